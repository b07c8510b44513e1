/*
 * Ending a slot's task. The transitions and who may make them: slot.h.
 */
#include "slot.h"

#include "sum.h"
#include "wake.h"

void fp__slot_end(const struct fp__seg *s, struct fp__slot *sl, int32_t status,
                  int32_t code, int32_t sig, int32_t exit_code,
                  uint32_t out_len, uint64_t run_us) {
  sl->status = status;
  sl->code = code;
  sl->sig = sig;
  sl->exit_code = exit_code;
  sl->out_len = out_len;
  sl->spawn_len = 0; /* a task that did not finish spawns nothing */
  sl->run_us = run_us;
  sl->res_sum = fp__res_sum(s, sl, atomic_load(&sl->id));
  fp__slot_set(sl, FP__SLOT_DONE);
}

void fp__slot_end_cancelled(const struct fp__seg *s, struct fp__slot *sl) {
  uint32_t owner = sl->owner; /* read before DONE: then the slot is theirs */
  fp__slot_end(s, sl, FP_CANCELLED, 0, 0, -1, 0, 0);
  fp__wake_owner(s, owner);
}
