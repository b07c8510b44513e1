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
#   $(MANDIR)/man1/forkpool.1, $(MANDIR)/man3/forkpool.3 (from
#   $(BUILD)/man, made from man/ with the version filled in)

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
FP_MAN_SRC := man/forkpool.1 man/forkpool.3
FP_MAN := $(addprefix $(BUILD)/,$(FP_MAN_SRC))

# The bridge binary is installed when this build has it (hiredis found),
# and removed by uninstall in any case.
FP_INSTALL_BINS := $(BIN) $(BRIDGE_BIN)
FP_ALL_BINS := forkpool forkpool-bridge

# $(call fp_pc_rel,PATH,BASE,VAR): PATH written as ${VAR} or ${VAR}/rest
# when it is BASE or lies under it, as zlib's configure does, so that
# `pkg-config --define-prefix` can relocate the whole file.
fp_pc_rel = $(if $(filter $(2),$(1)),$${$(3)},$(if $(filter $(2)/%,$(1)),$${$(3)}$(patsubst $(2)/%,/%,$(1)),$(1)))

.PHONY: install uninstall version-check

# --- generated files ---------------------------------------------------------
# The man pages and forkpool.pc carry the version (read from the header by
# the Makefile), never a copy of it: their sources say @VERSION@ (and the
# man pages @VERSION_MAJOR@) and are filled in here. The man pages are
# built by `all`; forkpool.pc, which also names the install paths, is made
# afresh by every `install` (and rewritten only when it changed).
$(BUILD)/man:
	mkdir -p $@

$(FP_MAN): $(BUILD)/man/%: man/% include/forkpool.h | $(BUILD)/man
	sed -e 's/@VERSION@/$(VERSION)/g' -e 's/@VERSION_MAJOR@/$(VERSION_MAJOR)/g' \
	    $< > $@.tmp
	mv -f $@.tmp $@

all: $(FP_MAN)

.PHONY: fp-force
$(FP_PC): forkpool.pc.in include/forkpool.h fp-force | $(BUILD)/bin
	@sed -e 's|@prefix@|$(PREFIX)|' \
	    -e 's|@exec_prefix@|$(call fp_pc_rel,$(EXEC_PREFIX),$(PREFIX),prefix)|' \
	    -e 's|@libdir@|$(call fp_pc_rel,$(LIBDIR),$(EXEC_PREFIX),exec_prefix)|' \
	    -e 's|@includedir@|$(call fp_pc_rel,$(INCLUDEDIR),$(PREFIX),prefix)|' \
	    -e 's|@VERSION@|$(VERSION)|' forkpool.pc.in > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

# --- version-check ---------------------------------------------------------
# The version is written once, in include/forkpool.h (see the Makefile).
# This checks that everything made from it says the same, so that no copy
# can drift: the header's numbers as the Makefile read them, what the
# built tool says (`forkpool --version`, i.e. fp_version(), i.e. the
# header's FP_VERSION_STRING as compiled), the shared library's soname,
# the Version of forkpool.pc, and the title lines of the built man pages;
# and that the sources of the generated files hold the placeholder, not a
# version of their own.
version-check: $(BIN) $(SHARED) $(FP_MAN) $(FP_PC)
	@fail=0; \
	check() { \
	  if [ "$$2" = "$$3" ]; then echo "version-check: $$1: $$2"; \
	  else echo "version-check: $$1 says '$$2', expected '$$3'" >&2; fail=1; fi; \
	}; \
	echo "version-check: include/forkpool.h FP_VERSION_MAJOR.MINOR.PATCH: $(VERSION)"; \
	check "$(BIN) --version" "$$($(BIN) --version 2>&1)" "forkpool $(VERSION)"; \
	if command -v readelf >/dev/null 2>&1; then \
	  so=$$(readelf -d $(SHARED) | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p'); \
	  check "$(SHARED) soname" "$$so" "$(FP_SO_NAME)"; \
	else echo "version-check: no readelf: soname not checked"; fi; \
	check "$(FP_PC) Version" "$$(sed -n 's/^Version: //p' $(FP_PC))" "$(VERSION)"; \
	check "forkpool.pc.in Version" "$$(sed -n 's/^Version: //p' forkpool.pc.in)" "@VERSION@"; \
	for m in $(FP_MAN_SRC); do \
	  th=$$(sed -n 's/^\.TH .*"forkpool \([^"]*\)".*/\1/p' $$m); \
	  check "$$m .TH (source)" "$$th" "@VERSION@"; \
	  th=$$(sed -n 's/^\.TH .*"forkpool \([^"]*\)".*/\1/p' $(BUILD)/$$m); \
	  check "$(BUILD)/$$m .TH" "$$th" "$(VERSION)"; \
	done; \
	exit $$fail

# --- install ---------------------------------------------------------------
install: $(STATIC) $(SHARED) $(FP_INSTALL_BINS) $(FP_MAN) $(FP_PC) version-check
	$(INSTALL) -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/forkpool
	$(if $(BRIDGE_BIN),$(INSTALL) -D -m 0755 $(BRIDGE_BIN) $(DESTDIR)$(BINDIR)/forkpool-bridge)
	$(INSTALL) -D -m 0644 $(STATIC) $(DESTDIR)$(LIBDIR)/libforkpool.a
	$(INSTALL) -D -m 0755 $(SHARED) $(DESTDIR)$(LIBDIR)/$(FP_SO_REAL)
	ln -sf $(FP_SO_REAL) $(DESTDIR)$(LIBDIR)/$(FP_SO_NAME)
	ln -sf $(FP_SO_REAL) $(DESTDIR)$(LIBDIR)/libforkpool.so
	$(INSTALL) -D -m 0644 include/forkpool.h $(DESTDIR)$(INCLUDEDIR)/forkpool.h
	$(INSTALL) -D -m 0644 $(FP_PC) $(DESTDIR)$(PKGCONFIGDIR)/forkpool.pc
	$(INSTALL) -D -m 0644 $(BUILD)/man/forkpool.1 $(DESTDIR)$(MANDIR)/man1/forkpool.1
	$(INSTALL) -D -m 0644 $(BUILD)/man/forkpool.3 $(DESTDIR)$(MANDIR)/man3/forkpool.3
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
