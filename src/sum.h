/*
 * Check values for task slots: a fast 64-bit hash over a slot's fields and
 * bytes. The producer seals a task's input with one, the worker (or the
 * supervisor) seals the result with another; each side checks the other's
 * before trusting it. A stray write by a buggy task into another slot is
 * then caught as FP_CORRUPT instead of being delivered as a wrong result.
 * Not cryptographic: it guards against accidents, not against attackers.
 */
#ifndef FP_SUM_H
#define FP_SUM_H

#include <stdint.h>
#include <string.h>

#include "segment.h"

static inline uint64_t fp__mix(uint64_t h, uint64_t v) {
  h ^= v * 0x9e3779b97f4a7c15ull;
  h = (h << 31) | (h >> 33);
  return h * 0xbf58476d1ce4e5b9ull;
}

static inline uint64_t fp__sum(uint64_t seed, const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = fp__mix(seed, n);
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, b, 8);
    h = fp__mix(h, v);
    b += 8;
    n -= 8;
  }
  uint64_t t = 0;
  memcpy(&t, b, n);
  h = fp__mix(h, t);
  return h ^ (h >> 29);
}

/* Input check value: the task id, its length and its bytes. */
static inline uint64_t fp__in_sum(const struct fp__slot *sl, uint64_t id,
                                  uint32_t len) {
  return fp__sum(fp__mix(id, len), (const unsigned char *)sl +
                                       sizeof(struct fp__slot), len);
}

/* Result check value: id, status, codes, output length and bytes. */
static inline uint64_t fp__res_sum_of(uint64_t id, int32_t status,
                                      int32_t code, int32_t sig,
                                      int32_t exit_code, const void *out,
                                      uint32_t n) {
  uint64_t h = fp__mix(id, (uint64_t)(uint32_t)status << 32 | (uint32_t)code);
  h = fp__mix(h, (uint64_t)(uint32_t)sig << 32 | (uint32_t)exit_code);
  return fp__sum(fp__mix(h, n), out, n);
}

/* Over the output and the spawned tasks after it (out_len + spawn_len). */
static inline uint64_t fp__res_sum(const struct fp__seg *s,
                                   struct fp__slot *sl, uint64_t id) {
  uint64_t n = (uint64_t)sl->out_len + sl->spawn_len;
  if (n > s->max_output) n = 0;
  return fp__res_sum_of(id ^ ((uint64_t)sl->spawn_len << 40), sl->status,
                        sl->code, sl->sig, sl->exit_code, fp__slot_out(s, sl),
                        (uint32_t)n);
}

#endif /* FP_SUM_H */
