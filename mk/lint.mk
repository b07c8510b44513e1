# lint and check-extra: included by the Makefile.
#
#   make lint         cppcheck, clang-tidy (.clang-tidy) on src/, and
#                     clang-format (.clang-format) on every C file
#   make check-extra  tests/abi.sh, tests/man.sh, tests/install.sh and
#                     version-check (mk/install.mk)
#
# Both install what they need with apt-get when run as root on Debian
# (cppcheck, clang-tidy, clang-format; man-db, groff-base, pkg-config), through
# tests/apt-install.sh as tests/ensure-deps.sh does for `make check`, and
# otherwise say what to install. lint-format checks that every C file of
# src/, include/, tests/, examples/ and bench/ is as .clang-format says
# (fix one with clang-format -i FILE).

CPPCHECK ?= cppcheck
CLANG_TIDY ?= clang-tidy
CLANG_FORMAT ?= clang-format

LINT_SRC := $(sort $(LIB_SRC) $(CLI_SRC) $(TOOL_SRC) $(BRIDGE_SRC))
LINT_CPPFLAGS := -Iinclude -Isrc -D_GNU_SOURCE

# --- cppcheck --------------------------------------------------------------
# Suppressions, each for a false positive (never for a real finding; fix
# those in the code):
#   missingIncludeSystem  cppcheck does not need the system headers (and
#                         hiredis may be absent: the bridge is optional)
#   nullPointer in src/cli/bench.c  the deliberate NULL store that makes
#                         `bench --crash-every` crash a worker
#   identicalInnerCondition in src/cli/stream.c  `if (*sig) return *sig;`
#                         reads a volatile sig_atomic_t twice; a signal
#                         handler only ever sets it to a signal number, so
#                         both reads are non-zero
LINT_CPPCHECK_FLAGS := --enable=warning,performance,portability \
  --std=c11 --error-exitcode=1 --inline-suppr --quiet \
  --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
  --suppress=missingIncludeSystem \
  --suppress=nullPointer:src/cli/bench.c \
  --suppress=identicalInnerCondition:src/cli/stream.c

# --- clang-tidy ------------------------------------------------------------
# The checks are in .clang-tidy. One clang-tidy process per file (clang-tidy
# 14 has crashed here parsing a comment when given many files at once), so
# `make -j lint` runs them in parallel. The bridge is checked when hiredis
# is installed (it needs its headers), as it is built.
# Per-file additions to .clang-tidy's checks, for false positives:
#   src/cli/bench.c  the deliberate NULL store of --crash-every
#   src/bridge/stream.c  `malloc(n * sizeof *sent)` for an array of
#                    pointers (struct held **) reads to the check as
#                    "sizeof(A*), pointer to aggregate"; clang-tidy 14 has no
#                    option to turn that warning off alone
LINT_TIDY_SRC := $(sort $(LIB_SRC) $(CLI_SRC) $(TOOL_SRC) $(if $(HIREDIS),$(BRIDGE_SRC)))
LINT_TIDY_EXTRA.src/cli/bench.c := --checks=-clang-analyzer-core.NullDereference
LINT_TIDY_EXTRA.src/bridge/stream.c := --checks=-bugprone-sizeof-expression
LINT_TIDY_FLAGS = -std=gnu11 $(LINT_CPPFLAGS) \
  $(if $(filter src/bridge/%,$(1)),$(shell pkg-config --cflags hiredis 2>/dev/null))
LINT_TIDY_TARGETS := $(addprefix lint-tidy/,$(LINT_TIDY_SRC))

# --- clang-format ----------------------------------------------------------
# Every tracked .c and .h of these folders (git ls-files; a file outside a
# git checkout, or not yet added, is found by wildcard instead).
LINT_FORMAT_DIRS := src include tests examples bench
LINT_FORMAT_SRC := $(sort $(shell git ls-files $(foreach d,$(LINT_FORMAT_DIRS),'$(d)/*.c' '$(d)/*.h') 2>/dev/null) \
  $(wildcard $(foreach d,$(LINT_FORMAT_DIRS),$(d)/*.c $(d)/*.h $(d)/*/*.c $(d)/*/*.h)))

.PHONY: lint lint-deps lint-cppcheck lint-tidy lint-format $(LINT_TIDY_TARGETS) check-extra

lint: lint-cppcheck lint-tidy lint-format
	@echo "lint: clean ($(words $(LINT_SRC)) files: cppcheck; $(words $(LINT_TIDY_SRC)) files: clang-tidy; $(words $(LINT_FORMAT_SRC)) files: clang-format)"

lint-deps:
	@missing=""; \
	command -v $(CPPCHECK) >/dev/null 2>&1 || missing="$$missing cppcheck"; \
	command -v $(CLANG_TIDY) >/dev/null 2>&1 || missing="$$missing clang-tidy"; \
	command -v $(CLANG_FORMAT) >/dev/null 2>&1 || missing="$$missing clang-format"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    sh tests/apt-install.sh lint $$missing || exit 1; \
	  else \
	    echo "lint: missing$$missing; install with: sudo apt-get install -y$$missing" >&2; \
	    exit 1; \
	  fi; \
	fi

# Lists every file that differs, then fails.
lint-format: lint-deps
	@bad=""; \
	for f in $(LINT_FORMAT_SRC); do \
	  $(CLANG_FORMAT) --dry-run -Werror "$$f" >/dev/null 2>&1 || bad="$$bad $$f"; \
	done; \
	if [ -n "$$bad" ]; then \
	  echo "lint: clang-format: not formatted (clang-format -i FILE):" >&2; \
	  for f in $$bad; do echo "  $$f" >&2; done; \
	  exit 1; \
	fi

lint-cppcheck: lint-deps
	$(CPPCHECK) $(LINT_CPPCHECK_FLAGS) $(LINT_CPPFLAGS) $(LINT_SRC)

lint-tidy: $(LINT_TIDY_TARGETS)

# Its output is printed in one block per file (readable under -j), less
# the "N warnings generated." counts of warnings in system headers.
$(LINT_TIDY_TARGETS): lint-tidy/%: lint-deps
	@out=$$($(CLANG_TIDY) --quiet $(LINT_TIDY_EXTRA.$*) $* -- \
	  $(call LINT_TIDY_FLAGS,$*) 2>&1); rc=$$?; \
	echo "clang-tidy $*"; \
	printf '%s\n' "$$out" | grep -v ' warnings\{0,1\} generated\.$$' | \
	  grep -v '^$$' || true; \
	if [ $$rc -ne 0 ]; then echo "lint: clang-tidy: problems in $*" >&2; fi; \
	exit $$rc

# --- check-extra -------------------------------------------------------------
# Every test runs, then the target fails if any did. $(MAKE) is passed on
# so that tests/install.sh's `make install` joins this make's job server.
check-extra: all version-check
	@rc=0; \
	for t in abi man; do \
	  echo "== tests/$$t.sh"; sh tests/$$t.sh $(BUILD) || rc=1; \
	done; \
	echo "== tests/install.sh"; \
	MAKE='$(MAKE)' sh tests/install.sh $(BUILD) || rc=1; \
	exit $$rc
