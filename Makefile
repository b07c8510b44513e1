# forkpool: plain GNU Makefile. Objects go to build/; nothing is written
# outside it except by `install`.

PREFIX ?= /usr/local
CC ?= cc
BUILD ?= build

# The version is written in one place only: the FP_VERSION_MAJOR, _MINOR
# and _PATCH lines of include/forkpool.h. It is read from there for the
# soname and the installed file names, forkpool.pc and the man pages'
# title lines ($(BUILD)/man); the header makes FP_VERSION_STRING (what
# `forkpool --version` prints) from the same three numbers. `make
# version-check` (mk/install.mk) checks that all of them agree.
# (A '#' inside $(shell) would start a comment in make before 4.3.)
FP_HASH := \#
fp_hdr_num = $(shell sed -n 's/^$(FP_HASH)define FP_VERSION_$(1)[[:space:]][[:space:]]*\([0-9][0-9]*\)[[:space:]]*$$/\1/p' include/forkpool.h)
VERSION_MAJOR := $(call fp_hdr_num,MAJOR)
VERSION_MINOR := $(call fp_hdr_num,MINOR)
VERSION_PATCH := $(call fp_hdr_num,PATCH)
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
ifneq ($(words $(VERSION_MAJOR) $(VERSION_MINOR) $(VERSION_PATCH)),3)
$(error include/forkpool.h: want one line "$(FP_HASH)define FP_VERSION_X N" for each of MAJOR, MINOR and PATCH (N decimal); read the version as '$(VERSION)')
endif

CSTD := -std=gnu11
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
OPT ?= -O2 -g
CPPFLAGS += -Iinclude -Isrc -D_GNU_SOURCE
CFLAGS += $(CSTD) $(WARN) $(OPT) -fvisibility=hidden -MMD -MP
LDLIBS_LIB := -lpthread -lrt -ldl

ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
endif

LIB_SRC := $(wildcard src/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
TOOL_SRC := $(wildcard src/tool/*.c)
TEST_SRC := $(wildcard tests/*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

# The Redis bridge is the one part with a dependency (hiredis): a separate
# binary, built only when hiredis is installed, so `forkpool` itself links
# libc alone. `forkpool bridge` runs build/bin/forkpool-bridge.
HIREDIS := $(shell pkg-config --exists hiredis 2>/dev/null && echo yes)
BRIDGE_SRC := $(wildcard src/bridge/*.c)
BRIDGE_OBJ := $(BRIDGE_SRC:%.c=$(BUILD)/obj/%.o)
BRIDGE_BIN := $(if $(and $(HIREDIS),$(BRIDGE_SRC)),$(BUILD)/bin/forkpool-bridge)
BRIDGE_EXAMPLES := $(if $(HIREDIS),$(BUILD)/examples/redis_producer)

STATIC := $(BUILD)/libforkpool.a
# The tool layer (src/tool/: options, log lines, clock, hash map, signal
# names) that the forkpool CLI and forkpool-bridge share; internal, never
# installed, and the library does not link it.
TOOL_LIB := $(BUILD)/libfptool.a
SHARED := $(BUILD)/libforkpool.so
BIN := $(BUILD)/bin/forkpool
PLUGINS := $(BUILD)/examples/crashy.so $(BUILD)/examples/hostile.so
EXAMPLES := $(BUILD)/examples/minimal $(BUILD)/examples/producer $(BUILD)/examples/tree \
  $(BUILD)/examples/zerocopy
# A coprocess handler (forkpool run/serve --coproc): a plain program that
# links libc only.
COPROC_EXAMPLES := $(BUILD)/examples/coproc-handler
TESTBIN := $(BUILD)/tests/check_forkpool

.PHONY: all check demo clean bench install uninstall

all: $(STATIC) $(SHARED) $(BIN) $(PLUGINS) $(EXAMPLES) $(COPROC_EXAMPLES) $(BRIDGE_BIN) $(BRIDGE_EXAMPLES)

$(BUILD)/obj/src $(BUILD)/obj/src/cli $(BUILD)/obj/src/tool $(BUILD)/obj/src/bridge $(BUILD)/obj/tests $(BUILD)/bin $(BUILD)/examples $(BUILD)/tests:
	mkdir -p $@

$(BUILD)/obj/src/%.o: src/%.c | $(BUILD)/obj/src
	$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -c $< -o $@

$(BUILD)/obj/src/cli/%.o: src/cli/%.c | $(BUILD)/obj/src/cli
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/src/tool/%.o: src/tool/%.c | $(BUILD)/obj/src/tool
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/src/bridge/%.o: src/bridge/%.c | $(BUILD)/obj/src/bridge
	$(CC) $(CPPFLAGS) $(CFLAGS) $(shell pkg-config --cflags hiredis) -c $< -o $@

$(BRIDGE_BIN): $(BRIDGE_OBJ) $(TOOL_LIB) $(STATIC) | $(BUILD)/bin
	$(CC) $(LDFLAGS) -o $@ $(BRIDGE_OBJ) $(TOOL_LIB) $(STATIC) $(shell pkg-config --libs hiredis) $(LDLIBS_LIB)

$(BUILD)/obj/tests/%.o: tests/%.c | $(BUILD)/obj/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(TOOL_LIB): $(TOOL_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libforkpool.so.$(VERSION_MAJOR) $(LDFLAGS) -o $@ $^ $(LDLIBS_LIB)
	ln -sf libforkpool.so $(BUILD)/libforkpool.so.$(VERSION_MAJOR)

$(BIN): $(CLI_OBJ) $(TOOL_LIB) $(STATIC) | $(BUILD)/bin
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(TOOL_LIB) $(STATIC) $(LDLIBS_LIB)

$(BUILD)/examples/%.so: examples/%.c include/forkpool.h | $(BUILD)/examples
	$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -shared -o $@ $<

$(BUILD)/examples/%: examples/%.c $(STATIC) | $(BUILD)/examples
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS_LIB)

# The coprocess handler links nothing of ours (no $(STATIC), no -I needed).
$(BUILD)/examples/coproc-handler: examples/coproc/handler.c | $(BUILD)/examples
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<

# The hiredis example links hiredis and nothing of ours; this explicit rule
# wins over the pattern rule above.
$(BUILD)/examples/redis_producer: examples/redis_producer.c | $(BUILD)/examples
	$(CC) $(CPPFLAGS) $(CFLAGS) $(shell pkg-config --cflags hiredis) $(LDFLAGS) -o $@ $< $(shell pkg-config --libs hiredis)

# --- tests -----------------------------------------------------------------
# libcheck is found with pkg-config; when missing, `make check` installs it
# with apt-get if it runs as root, and otherwise prints the command to run.
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm)

$(TESTBIN): $(TEST_OBJ) $(STATIC) | $(BUILD)/tests
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(STATIC) $(CHECK_LIBS) $(LDLIBS_LIB)

check-deps:
	@sh tests/ensure-deps.sh
	@sh tests/ensure-bridge-deps.sh

check: check-deps
	$(MAKE) all $(TESTBIN)
	$(TESTBIN)
	sh tests/cli.sh $(BUILD)
	sh tests/serve.sh $(BUILD)
	sh tests/bridge.sh $(BUILD)
	sh tests/python.sh $(BUILD)
	sh tests/coproc_proto.sh $(BUILD)
	sh tests/anylang.sh $(BUILD)
	sh tests/readme.sh $(BUILD)
	sh tests/synopsis.sh $(BUILD)
	sh tests/abi_old.sh $(BUILD)

demo: all
	sh examples/demo.sh $(BUILD)

# --- benchmarks ------------------------------------------------------------
# Baselines written in this repo (bench/*.c), measured in the same run as
# `forkpool bench`; bench/compare.sh prints the tables and ratios.
# The Boost.Interprocess message_queue pool (bench/boost_mq_pool.cpp) is the
# one C++ baseline: built only when the Boost headers and a C++ compiler are
# there. `make bench` first installs them (bench/ensure-bench-deps.sh, with
# apt-get as root; never fatal: compare.sh skips the Boost rows with a note
# without them), then builds in a sub-make so that the header test below
# sees what was just installed. Nothing of ours links Boost or libstdc++.
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
BOOST_MQ_HDR := /usr/include/boost/interprocess/ipc/message_queue.hpp
BENCH_CXXFLAGS := -std=gnu++17 -Wall -Wextra -Werror -Wshadow $(OPT)
BOOST_BENCH := $(if $(and $(wildcard $(BOOST_MQ_HDR)),$(shell command -v $(CXX) 2>/dev/null)),$(BUILD)/bench/boost_mq_pool)

$(BUILD)/bench:
	mkdir -p $@

$(BUILD)/bench/%: bench/%.c bench/bench_util.h | $(BUILD)/bench
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -lrt

$(BUILD)/bench/boost_mq_pool: bench/boost_mq_pool.cpp bench/bench_util.h | $(BUILD)/bench
	$(CXX) $(CPPFLAGS) $(BENCH_CXXFLAGS) $(LDFLAGS) -o $@ $< -lpthread -lrt

.PHONY: bench-deps bench-bin
bench-deps:
	@sh bench/ensure-bench-deps.sh

bench-bin: all $(BENCH_BIN) $(BOOST_BENCH)

bench: bench-deps
	$(MAKE) bench-bin
	sh bench/compare.sh $(BUILD)

clean:
	rm -rf $(BUILD)

# Further targets, one concern per file: install (install.mk), quality
# gates such as sanitizers, valgrind and fuzzing (quality.mk), lint and the
# ABI, man page and install tests (lint.mk).
-include $(wildcard mk/*.mk)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BRIDGE_OBJ:.o=.d)
