# --- torture: fault-injection runs of issue #4 (tests/torture) --------------
# `make torture` builds build/tests/torture and runs every scenario; the
# binary bounds itself (a guard per scenario, 380 s in all; about 50 s
# when nothing hangs). `build/tests/torture NAME` runs one.
TORTURE_SRC := $(wildcard tests/torture/*.c)
TORTURE_OBJ := $(TORTURE_SRC:%.c=$(BUILD)/obj/%.o)
TORTURE_BIN := $(BUILD)/tests/torture

$(BUILD)/obj/tests/torture:
	mkdir -p $@

$(BUILD)/obj/tests/torture/%.o: tests/torture/%.c | $(BUILD)/obj/tests/torture
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(TORTURE_BIN): $(TORTURE_OBJ) $(STATIC) | $(BUILD)/tests
	$(CC) $(LDFLAGS) -o $@ $(TORTURE_OBJ) $(STATIC) $(LDLIBS_LIB)

.PHONY: torture
torture: $(TORTURE_BIN) all
	TORTURE_CRASHY=$(BUILD)/examples/crashy.so $(TORTURE_BIN) all

-include $(TORTURE_OBJ:.o=.d)
