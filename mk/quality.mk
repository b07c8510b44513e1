# Quality gates: sanitizers, valgrind, fuzzing and the bad-input table.
# Included by the Makefile. The sanitizer, valgrind and fuzzing builds each
# have a directory of their own, so they never disturb build/.
#
#   make check-sanitize   make check and tests/badinput.sh with ASan + UBSan,
#                         in build-asan (about 2 minutes)
#   make memcheck         producer-side Check suites under valgrind, in
#                         build-memcheck (about 1 minute)
#   make fuzz             each libFuzzer target for FUZZ_SECONDS (default
#                         60), in build-fuzz; installs clang when missing
#   make badinput         tests/badinput.sh on $(BUILD): every flag of every
#                         subcommand given bad values, bad inputs and
#                         handlers (about 15 s)
#
# Run them one after another, not in parallel with `make check`: the test
# scripts look for leftovers in /dev/shm, and some count any new entry.

.PHONY: check-sanitize memcheck fuzz fuzz-build badinput

# UBSan findings must fail the run, not scroll past: make every sanitizer
# abort at the first error, whichever build asked for one. The null check
# is left out: the crash tests store through NULL on purpose (crashy.c's
# and tests/testutil.c's "segv"), which must stay a SIGSEGV; any other null
# dereference still faults, and ASan reports it with a stack.
ifneq ($(SANITIZE),)
CFLAGS += -fno-sanitize-recover=all
ifneq ($(findstring undefined,$(SANITIZE)),)
CFLAGS += -fno-sanitize=null
LDFLAGS += -fno-sanitize=null
endif
endif

# --- sanitizers --------------------------------------------------------------
ASAN_BUILD ?= build-asan
# detect_leaks: LeakSanitizer runs when the test process (and each forked
# Check test) exits; workers and supervisors end with _exit, so it never
# runs there. handle_abort=0 (the default) keeps abort() a plain SIGABRT.
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86:strict_string_checks=1:detect_stack_use_after_return=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87

# `make check` plus the bad-input table, every binary and plugin built with
# ASan and UBSan: the error paths run instrumented too.
check-sanitize:
	$(SAN_ENV) $(MAKE) check SANITIZE=address,undefined BUILD=$(ASAN_BUILD)
	$(SAN_ENV) sh tests/badinput.sh $(ASAN_BUILD)

# --- valgrind ------------------------------------------------------------------
# The Check binary built at -O1 without inlining (clean stacks, and the
# tests that look for a function's name in a crash report still find it),
# run with CK_FORK=no so valgrind sees the test code itself. valgrind
# follows fork() whatever --trace-children says (that option is about
# exec), so the supervisors and workers the pools fork run under it too:
# an error in one of them changes its exit status to 99, which the pool
# reports and the test catches. Not run here: named/deaths and
# named/signals, whose forked helper processes _exit() on purpose without
# freeing the parent's handles (valgrind would count those as lost).
MEMCHECK_BUILD ?= build-memcheck
MEMCHECK_SUITES ?= config queue pool crash isolation sched descend room named:attach
VALGRIND_FLAGS := -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--error-exitcode=99 --child-silent-after-fork=yes --num-callers=30 \
	$(if $(wildcard tests/valgrind.supp),--suppressions=tests/valgrind.supp)

memcheck: check-deps
	@sh tests/ensure-tools.sh valgrind
	$(MAKE) all $(MEMCHECK_BUILD)/tests/check_forkpool BUILD=$(MEMCHECK_BUILD) \
		OPT="-O1 -g -fno-inline" SANITIZE=
	@fail=0; for s in $(MEMCHECK_SUITES); do \
	  suite=$${s%%:*}; tcase=$${s#*:}; [ "$$tcase" = "$$s" ] && tcase=; \
	  echo "memcheck: suite $$suite$${tcase:+, tcase $$tcase}"; \
	  env CK_FORK=no CK_RUN_SUITE=$$suite $${tcase:+CK_RUN_CASE=$$tcase} \
	    timeout 900 valgrind $(VALGRIND_FLAGS) \
	    $(MEMCHECK_BUILD)/tests/check_forkpool >$(MEMCHECK_BUILD)/memcheck.log 2>&1 \
	    || fail=1; \
	  cat $(MEMCHECK_BUILD)/memcheck.log; \
	  grep -q 'Checks: [1-9]' $(MEMCHECK_BUILD)/memcheck.log || \
	    { echo "memcheck: no test ran in $$s"; fail=1; }; \
	done; \
	if [ $$fail = 0 ]; then echo "memcheck: no leaks or errors"; \
	else echo "memcheck: FAILED (see above)"; exit 1; fi

# --- fuzzing -------------------------------------------------------------------
# libFuzzer targets (clang), with ASan and UBSan. Each runs FUZZ_SECONDS on
# a scratch copy of its seed corpus, so the repository is not modified;
# inputs that crash are saved in $(FUZZ_BUILD)/ as crash-* / timeout-*.
# Reproduce one with: $(FUZZ_BUILD)/fuzz_segment FILE
# To keep what a long run found, merge it into the seeds (small inputs
# only): $(FUZZ_BUILD)/fuzz_cli -merge=1 tests/fuzz/corpus/cli DIR
# After a change of the segment layout: sh tests/fuzz/make-seeds.sh.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Wall -Wextra -Werror -Iinclude -Isrc -Isrc/cli
FUZZ_LIBS := -lpthread -lrt -ldl
FUZZ_SEGMENT_SRC := tests/fuzz/fuzz_segment.c $(LIB_SRC)
FUZZ_CLI_SRC := tests/fuzz/fuzz_cli.c src/cli/input.c src/cli/json.c \
	src/cli/output.c src/cli/format.c src/tool/signame.c src/tool/args.c \
	src/tool/utf8.c src/strerror.c
# Per target: libFuzzer options (a segment seed is 16 KiB).
FUZZ_OPTS_segment := -max_len=65536
FUZZ_OPTS_cli := -max_len=8192

$(FUZZ_BUILD):
	mkdir -p $@

$(FUZZ_BUILD)/fuzz_segment: $(FUZZ_SEGMENT_SRC) $(wildcard src/*.h) include/forkpool.h | $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SEGMENT_SRC) $(FUZZ_LIBS)

$(FUZZ_BUILD)/fuzz_cli: $(FUZZ_CLI_SRC) $(wildcard src/cli/*.h src/tool/*.h) include/forkpool.h | $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_CLI_SRC) $(FUZZ_LIBS)

fuzz-build:
	@FUZZ_CC=$(FUZZ_CC) sh tests/ensure-tools.sh libfuzzer
	$(MAKE) $(FUZZ_BUILD)/fuzz_segment $(FUZZ_BUILD)/fuzz_cli

# The segment seeds of the current layout are made afresh from a real pool
# (tests/fuzz/make-seeds.sh) next to the committed ones.
fuzz: fuzz-build all
	@rm -rf $(FUZZ_BUILD)/seeds; \
	sh tests/fuzz/make-seeds.sh $(BUILD) $(FUZZ_BUILD)/seeds >/dev/null || \
	  echo "fuzz: could not make fresh segment seeds; using the committed ones"
	@fail=0; for t in segment cli; do \
	  work=$(FUZZ_BUILD)/corpus-$$t; rm -rf $$work; mkdir -p $$work; \
	  cp tests/fuzz/corpus/$$t/* $$work/; \
	  for f in $(FUZZ_BUILD)/seeds/$$t/*; do \
	    [ -f "$$f" ] && cp "$$f" "$$work/fresh-$${f##*/}"; done; \
	  opts=; [ $$t = segment ] && opts="$(FUZZ_OPTS_segment)"; \
	  [ $$t = cli ] && opts="$(FUZZ_OPTS_cli)"; \
	  echo "fuzz: fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  if $(FUZZ_BUILD)/fuzz_$$t $$opts -max_total_time=$(FUZZ_SECONDS) \
	      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	      -artifact_prefix=$(FUZZ_BUILD)/ $$work >$(FUZZ_BUILD)/fuzz_$$t.log 2>&1; \
	  then grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' \
	      $(FUZZ_BUILD)/fuzz_$$t.log | sed "s/^/fuzz_$$t: /"; \
	  else fail=1; tail -n 60 $(FUZZ_BUILD)/fuzz_$$t.log; \
	    echo "fuzz: fuzz_$$t FAILED; log $(FUZZ_BUILD)/fuzz_$$t.log"; fi; \
	done; \
	[ $$fail = 0 ] && echo "fuzz: no crash" || exit 1

# --- bad input ---------------------------------------------------------------
# tests/badinput.sh on the binaries of $(BUILD) (the sanitizer options are
# harmless for a plain build and needed for BUILD=build-asan).
badinput: all
	$(SAN_ENV) sh tests/badinput.sh $(BUILD)
