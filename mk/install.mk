# install, uninstall and version-check: included by the Makefile.
#
#   make install   [PREFIX=/usr/local] [DESTDIR=/staging] [LIBDIR=...] ...
#   make uninstall [same variables as install]
#   make version-check
#
# PREFIX defaults to /usr/local (Makefile). DESTDIR is never set here: it
# is a staging root prepended to every path at install time only (GNU
# coding standards); the installed forkpool.pc names the real PREFIX.
#
# Installed files (and nothing else; uninstall removes exactly these, and
# leaves directories alone, as automake does: a directory such as
# $(MANDIR)/man3 may be shared with other packages):
#   $(BINDIR)/forkpool, $(BINDIR)/forkpool-bridge (when it was built)
#   $(LIBDIR)/libforkpool.a
#   $(LIBDIR)/libforkpool.so.$(VERSION), and the symlinks
#   $(LIBDIR)/libforkpool.so.$(VERSION_MAJOR) (the soname) and
#   $(LIBDIR)/libforkpool.so (for -lforkpool), both to the real file
#   $(INCLUDEDIR)/forkpool.h
#   $(PKGCONFIGDIR)/forkpool.pc
#   $(MANDIR)/man1/forkpool.1, $(MANDIR)/man3/forkpool.3

EXEC_PREFIX ?= $(PREFIX)
BINDIR ?= $(EXEC_PREFIX)/bin
LIBDIR ?= $(EXEC_PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATAROOTDIR ?= $(PREFIX)/share
MANDIR ?= $(DATAROOTDIR)/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL ?= install
LDCONFIG ?= ldconfig

FP_SO_REAL := libforkpool.so.$(VERSION)
FP_SO_NAME := libforkpool.so.$(VERSION_MAJOR)
FP_PC := $(BUILD)/forkpool.pc
FP_MAN := man/forkpool.1 man/forkpool.3

# The bridge binary is installed when this build has it (hiredis found),
# and removed by uninstall in any case.
FP_INSTALL_BINS := $(BIN) $(BRIDGE_BIN)
FP_ALL_BINS := forkpool forkpool-bridge

# $(call fp_pc_rel,PATH,BASE,VAR): PATH written as ${VAR} or ${VAR}/rest
# when it is BASE or lies under it, as zlib's configure does, so that
# `pkg-config --define-prefix` can relocate the whole file.
fp_pc_rel = $(if $(filter $(2),$(1)),$${$(3)},$(if $(filter $(2)/%,$(1)),$${$(3)}$(patsubst $(2)/%,/%,$(1)),$(1)))

.PHONY: install uninstall version-check

# --- version-check ---------------------------------------------------------
# The version lives in three places that must agree: the Makefile
# (VERSION, VERSION_MAJOR: the soname and the installed file names), the
# header (FP_VERSION_MAJOR/MINOR/PATCH and FP_VERSION_STRING), and what
# the built tool says (`forkpool --version`, i.e. fp_version()). The man
# pages name it in their title line too.
# (A '#' inside $(shell) would start a comment in make before 4.3.)
FP_HASH := \#
fp_hdr_num = $(shell sed -n 's/^$(FP_HASH)define FP_VERSION_$(1)  *\([0-9][0-9]*\).*/\1/p' include/forkpool.h)
FP_HDR_VERSION = $(call fp_hdr_num,MAJOR).$(call fp_hdr_num,MINOR).$(call fp_hdr_num,PATCH)
FP_HDR_STRING = $(shell sed -n 's/^$(FP_HASH)define FP_VERSION_STRING  *"\([^"]*\)".*/\1/p' include/forkpool.h)

version-check: $(BIN)
	@fail=0; \
	bin=$$($(BIN) --version 2>&1); \
	check() { \
	  if [ "$$2" = "$$3" ]; then echo "version-check: $$1: $$2"; \
	  else echo "version-check: $$1 says '$$2', expected '$$3'" >&2; fail=1; fi; \
	}; \
	check "header FP_VERSION_MAJOR.MINOR.PATCH" "$(FP_HDR_VERSION)" "$(VERSION)"; \
	check "header FP_VERSION_STRING" "$(FP_HDR_STRING)" "$(VERSION)"; \
	check "Makefile VERSION_MAJOR" "$(VERSION_MAJOR)" "$(firstword $(subst ., ,$(VERSION)))"; \
	check "$(BIN) --version" "$$bin" "forkpool $(VERSION)"; \
	for m in $(FP_MAN); do \
	  th=$$(sed -n 's/^\.TH .*"forkpool \([^"]*\)".*/\1/p' $$m); \
	  check "$$m .TH" "$$th" "$(VERSION)"; \
	done; \
	exit $$fail

# --- install ---------------------------------------------------------------
install: $(STATIC) $(SHARED) $(FP_INSTALL_BINS) version-check
	sed -e 's|@prefix@|$(PREFIX)|' \
	    -e 's|@exec_prefix@|$(call fp_pc_rel,$(EXEC_PREFIX),$(PREFIX),prefix)|' \
	    -e 's|@libdir@|$(call fp_pc_rel,$(LIBDIR),$(EXEC_PREFIX),exec_prefix)|' \
	    -e 's|@includedir@|$(call fp_pc_rel,$(INCLUDEDIR),$(PREFIX),prefix)|' \
	    -e 's|@VERSION@|$(VERSION)|' forkpool.pc.in > $(FP_PC).tmp
	mv -f $(FP_PC).tmp $(FP_PC)
	$(INSTALL) -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/forkpool
	$(if $(BRIDGE_BIN),$(INSTALL) -D -m 0755 $(BRIDGE_BIN) $(DESTDIR)$(BINDIR)/forkpool-bridge)
	$(INSTALL) -D -m 0644 $(STATIC) $(DESTDIR)$(LIBDIR)/libforkpool.a
	$(INSTALL) -D -m 0755 $(SHARED) $(DESTDIR)$(LIBDIR)/$(FP_SO_REAL)
	ln -sf $(FP_SO_REAL) $(DESTDIR)$(LIBDIR)/$(FP_SO_NAME)
	ln -sf $(FP_SO_REAL) $(DESTDIR)$(LIBDIR)/libforkpool.so
	$(INSTALL) -D -m 0644 include/forkpool.h $(DESTDIR)$(INCLUDEDIR)/forkpool.h
	$(INSTALL) -D -m 0644 $(FP_PC) $(DESTDIR)$(PKGCONFIGDIR)/forkpool.pc
	$(INSTALL) -D -m 0644 man/forkpool.1 $(DESTDIR)$(MANDIR)/man1/forkpool.1
	$(INSTALL) -D -m 0644 man/forkpool.3 $(DESTDIR)$(MANDIR)/man3/forkpool.3
	@# A real install (no DESTDIR) refreshes the loader's cache, as zlib's
	@# does: /usr/local/lib is found through it, not by default.
	@if [ -z "$(DESTDIR)" ]; then $(LDCONFIG) >/dev/null 2>&1 || true; fi

# --- uninstall -------------------------------------------------------------
uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(FP_ALL_BINS))
	rm -f $(DESTDIR)$(LIBDIR)/libforkpool.a
	rm -f $(DESTDIR)$(LIBDIR)/libforkpool.so
	rm -f $(DESTDIR)$(LIBDIR)/$(FP_SO_NAME)
	rm -f $(DESTDIR)$(LIBDIR)/$(FP_SO_REAL)
	rm -f $(DESTDIR)$(INCLUDEDIR)/forkpool.h
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/forkpool.pc
	rm -f $(DESTDIR)$(MANDIR)/man1/forkpool.1
	rm -f $(DESTDIR)$(MANDIR)/man3/forkpool.3
	@if [ -z "$(DESTDIR)" ]; then $(LDCONFIG) >/dev/null 2>&1 || true; fi
