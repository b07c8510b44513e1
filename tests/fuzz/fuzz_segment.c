/*
 * libFuzzer target: a shared segment is untrusted input (DESIGN.md,
 * invariant 5). Whatever bytes another process left in /dev/shm, the
 * validator must refuse them or vouch for them, and a segment it vouches
 * for must never make a producer read or write outside the mapping.
 *
 * Each input is used twice:
 *
 *   1. Raw: the bytes are the whole mapping, as fp__shm_open() would map a
 *      file of that size. fp__seg_validate() runs on them; when it accepts,
 *      the checks below run on them.
 *
 *   2. Structured: the first bytes pick a small geometry, a segment is laid
 *      out for it (fp__seg_layout, as a supervisor would), and the rest of
 *      the input is a list of 32-bit patches at 4-byte-aligned offsets
 *      anywhere in it, header included: a stray write, a crashed writer,
 *      or a hostile process. Random bytes almost never pass the validator
 *      (every offset must match the geometry), so this is how the fuzzer
 *      reaches valid headers over damaged queues, rows and slots.
 *
 * After validation succeeds, as a producer attaching would:
 *   - bind the geometry (fp__seg_bind) and check that every region it
 *     yields (ready ring entries, rows, client rows, crash reports, each
 *     slot's header, input and output buffers) lies inside the mapping and
 *     that the regions are in order without overlap;
 *   - read every byte of those regions through the accessors (ASan catches
 *     a read past the mapping: the copy is allocated with its exact size);
 *   - fp_pool_stats() and fp_pool_worker() for every row on a read-only
 *     monitor handle over the segment;
 *   - the check values of every slot, bounded as client.c and worker.c
 *     bound them;
 *   - the queue operations on damaged rings and slots (take ready until
 *     empty, sweep, take free until empty, recount, a task's life), which
 *     must stay in bounds and end.
 *
 * Build: see mk/quality.mk (make fuzz). Run alone:
 *   build-fuzz/fuzz_segment -max_len=65536 tests/fuzz/corpus/segment
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "queue.h"
#include "segment.h"
#include "sum.h"

/* Crash loudly with a message: libFuzzer saves the input. */
#define REQUIRE(c)                                                          \
  do {                                                                      \
    if (!(c)) {                                                             \
      fprintf(stderr, "fuzz_segment: %s:%d: %s\n", __FILE__, __LINE__, #c); \
      abort();                                                              \
    }                                                                       \
  } while (0)

static volatile unsigned char sink;

/* Read every byte of [p, p + n): ASan reports any that is not ours. */
static void touch(const void *p, size_t n) {
  const volatile unsigned char *b = p;
  unsigned char x = 0;
  for (size_t i = 0; i < n; i++) x ^= b[i];
  sink ^= x;
}

/* [p, p + n) lies inside [base, base + len). */
static int inside(const struct fp__seg *s, const void *p, uint64_t n,
                  size_t len) {
  const unsigned char *c = p;
  return c >= s->base && (uint64_t)(c - s->base) <= len &&
         n <= len - (uint64_t)(c - s->base);
}

static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* Everything a producer may do with a segment the validator accepted. */
static void exercise(unsigned char *map, size_t len) {
  struct fp__seg s;
  memset(&s, 0, sizeof(s));
  s.hdr = (struct fp__hdr *)map;
  s.base = map;
  s.len = s.hdr->seg_bytes;
  s.maplen = len;
  s.fd = -1;
  REQUIRE(s.len <= len);
  fp__seg_bind(&s);

  /* The geometry the accessors use, against the mapping. */
  REQUIRE(s.nslots >= 1 && s.nslots <= FP_MAX_SLOTS);
  REQUIRE(s.nrows >= 1 && s.nclients >= 1);
  REQUIRE(s.max_input <= FP_MAX_IO_BYTES && s.max_output <= FP_MAX_IO_BYTES);
  REQUIRE(s.ring_off >= sizeof(struct fp__hdr));
  uint64_t ents = (uint64_t)fp__nrings(s.nclients) * s.ring_cap;
  REQUIRE(s.ring_cap >= s.nslots && (s.ring_cap & (s.ring_cap - 1)) == 0);
  REQUIRE(inside(&s, (const void *)s.ents, ents * sizeof(uint32_t), len));
  REQUIRE(s.ring_off + ents * sizeof(uint32_t) <= s.rows_off);
  REQUIRE(s.rows_off + (uint64_t)s.nrows * sizeof(struct fp__row) <=
          s.clients_off);
  uint64_t rep_off =
      round_up(s.clients_off + (uint64_t)s.nclients * sizeof(struct fp__client),
               FP__CACHELINE);
  REQUIRE(rep_off + (uint64_t)s.nrows * sizeof(struct fp__report) <=
          s.slots_off);
  REQUIRE(s.slot_stride >= FP__SLOT_HDR_BYTES +
                               round_up(s.max_input, FP__CACHELINE) +
                               s.max_output);
  REQUIRE(s.slots_off + (uint64_t)s.nslots * s.slot_stride <= len);

  touch((const void *)s.ents, ents * sizeof(uint32_t));
  for (uint32_t r = 0; r < s.nrows; r++) {
    REQUIRE(inside(&s, fp__row_at(&s, r), sizeof(struct fp__row), len));
    touch(fp__row_at(&s, r), sizeof(struct fp__row));
    struct fp__report *rep = fp__report_at(&s, r);
    REQUIRE(inside(&s, rep, sizeof(*rep), len));
    REQUIRE((unsigned char *)rep >= s.base + rep_off);
    touch(rep, sizeof(*rep));
  }
  for (uint32_t c = 0; c < s.nclients; c++) {
    REQUIRE(inside(&s, fp__client_at(&s, c), sizeof(struct fp__client), len));
    touch(fp__client_at(&s, c), sizeof(struct fp__client));
  }
  for (uint32_t i = 0; i < s.nslots; i++) {
    struct fp__slot *sl = fp__slot_at(&s, i);
    REQUIRE(inside(&s, sl, s.slot_stride, len));
    REQUIRE(inside(&s, fp__slot_in(sl), s.max_input, len));
    REQUIRE(inside(&s, fp__slot_out(&s, sl), s.max_output, len));
    REQUIRE(fp__slot_in(sl) + s.max_input <= fp__slot_out(&s, sl));
    touch(sl, FP__SLOT_HDR_BYTES);
    touch(fp__slot_in(sl), s.max_input);
    touch(fp__slot_out(&s, sl), s.max_output);
    /* The check values, bounded as worker.c and client.c bound them. */
    uint64_t id = atomic_load(&sl->id);
    if (sl->in_len <= s.max_input)
      sink ^= (unsigned char)fp__in_sum(sl, id, sl->in_len);
    sink ^= (unsigned char)fp__res_sum(&s, sl, id);
  }

  /* What `forkpool stat` shows: a monitor handle over the segment. fd -1:
   * the liveness test then says "alive" without touching anything. */
  struct fp_pool p;
  memset(&p, 0, sizeof(p));
  p.seg = s;
  p.cmd_fd = -1;
  p.attached = 1;
  p.monitor = 1;
  p.stopped = 1;
  fp_stats st;
  REQUIRE(fp_pool_stats(&p, &st) == 0);
  /* Whatever the segment says, the state has a name ("unknown" at worst). */
  REQUIRE(fp_pool_state_name(st.state) != NULL && st.rows == s.nrows &&
          st.slots == s.nslots);
  for (unsigned r = 0; r <= s.nrows; r++) {
    fp_worker_info wi;
    int rc = fp_pool_worker(&p, r, &wi);
    REQUIRE(rc == (r < s.nrows ? 0 : -ERANGE));
    if (rc == 0) REQUIRE(fp_worker_state_name(wi.state) != NULL);
  }

  /*
   * The queue, as producers and workers run it on whatever the rings and
   * the stack hold (the lock is not taken: one thread). Every index handed
   * out must be a slot in the state asked for, and every loop must end
   * (libFuzzer's -timeout catches one that runs for billions of steps).
   * First on the rings as found: cancel every other READY slot, then take
   * what is ready...
   */
  for (uint32_t i = 0; i < s.nslots; i += 2) {
    struct fp__slot *sl = fp__slot_at(&s, i);
    uint32_t w = fp__slot_word(sl);
    if ((w & FP__SLOT_STATE_MASK) == FP__SLOT_READY)
      REQUIRE(fp__slot_claim_end(sl, w, 1));
  }
  (void)fp__q_queued(&s);
  (void)fp__q_any(&s);
  (void)fp__q_submitted(&s);
  struct fp__taker tk = {0, 0, NULL};
  _Atomic uint32_t row_slot = FP__NONE;
  uint32_t taken = 0;
  for (uint32_t k = 0; k <= s.nslots; k++) {
    uint32_t i = fp__q_take(&s, &tk, 0, &row_slot);
    if (i == FP__NONE) break;
    REQUIRE(i < s.nslots && atomic_load(&row_slot) == i);
    REQUIRE(fp__slot_running_by(fp__slot_word(fp__slot_at(&s, i)), 0));
    taken++;
  }
  REQUIRE(taken <= s.nslots);
  /*
   * ...then sweep, twice, as two ticks of the supervisor would: a READY
   * slot that no ring held at both (a damaged entry, or a task whose entry
   * its producer never wrote) is queued by the second; then every READY
   * slot is taken.
   */
  struct fp__ring_writer retry = {atomic_load(&s.hdr->q.retry.tail),
                                  atomic_load(&s.hdr->q.retry.head)};
  uint32_t *suspect = calloc(s.nslots, sizeof(uint32_t));
  REQUIRE(suspect != NULL);
  for (int tick = 0; tick < 2; tick++) {
    REQUIRE(fp__q_sweep(&s, &retry, NULL, NULL, suspect, NULL) >= 0);
    for (uint32_t k = 0; k <= s.nslots; k++)
      if (fp__q_take(&s, &tk, 0, &row_slot) == FP__NONE) break;
  }
  free(suspect);
  for (uint32_t i = 0; i < s.nslots; i++)
    REQUIRE(fp__slot_state(fp__slot_at(&s, i)) != FP__SLOT_READY);
  REQUIRE(fp__q_take(&s, &tk, 0, &row_slot) == FP__NONE);
  /* ...then what is free, until none is... */
  struct fp__queue *q = &s.hdr->q;
  uint32_t cursor = 0, got = 0;
  (void)fp__q_recount(&s);
  for (uint32_t k = 0; k <= s.nslots; k++) {
    uint32_t i = fp__q_take_free(&s, 0, 1, &cursor);
    if (i == FP__NONE) break;
    REQUIRE(i < s.nslots);
    REQUIRE(fp__slot_word(fp__slot_at(&s, i)) == fp__slot_filling_word(0, 1));
    got++;
  }
  REQUIRE(got <= s.nslots);
  for (uint32_t i = 0; i < s.nslots; i++)
    REQUIRE(fp__slot_word(fp__slot_at(&s, i)) != FP__SLOT_FREE);
  REQUIRE(fp__q_recount(&s) == 0);
  /* A task's life on the repaired queue: free -> filling -> ready -> taken,
   * then back to free. Row 0's normal ring as a producer that just
   * claimed the row takes it over. */
  struct fp__ring *rg = fp__q_ring(&s, 0);
  uint64_t tail = atomic_load(&rg->tail), head = atomic_load(&rg->head);
  if (tail >= FP__RING_SANE) { /* as fp__rings_join does */
    atomic_store(&rg->tail, tail = 0);
    atomic_store(&rg->head, head = 0);
  }
  if (head > tail || tail - head > s.ring_cap)
    atomic_store(&rg->head, head = tail);
  struct fp__ring_writer w0 = {tail, head};
  if (atomic_load(&q->clients_hwm) == 0) atomic_store(&q->clients_hwm, 1);
  for (uint32_t k = 0; k < got && k < 64; k++) {
    uint32_t i = (uint32_t)(k % s.nslots);
    if (fp__slot_word(fp__slot_at(&s, i)) != fp__slot_filling_word(0, 1))
      continue;
    fp__q_put_free(&s, i);
    cursor = i;
    REQUIRE(fp__q_take_free(&s, 0, 1, &cursor) == i);
    if (fp__q_push(&s, 0, &w0, i) == 0)
      REQUIRE(fp__q_take(&s, &tk, 0, &row_slot) == i);
  }
}

/* A copy of n bytes in memory of exactly that size, page-aligned as a
 * mapping is, so that ASan sees any access past its end. */
static unsigned char *copy_of(const uint8_t *data, size_t n) {
  void *p = NULL;
  if (posix_memalign(&p, 4096, n ? n : 1) != 0) return NULL;
  if (n) memcpy(p, data, n);
  return p;
}

static void raw(const uint8_t *data, size_t size) {
  unsigned char *map = copy_of(data, size);
  if (map == NULL) return;
  int r = fp__seg_validate(map, size);
  REQUIRE(r == 0 || r == -EBADMSG || r == -EPROTO);
  if (r == 0) exercise(map, size);
  free(map);
}

static void structured(const uint8_t *data, size_t size) {
  if (size < 7) return;
  struct fp__geometry g = {
      .nslots = 1u + data[0] % 16u,
      .nrows = 1u + data[1] % 8u,
      .nclients = 1u + data[2] % 4u,
      .max_input = data[3] % 2u ? data[3] : 0u, /* 0..255, often 0 */
      .max_output = data[4] % 2u ? data[4] : 0u,
  };
  unsigned npatch = data[5];
  int resize = (signed char)data[6]; /* the file grew or shrank */
  data += 7;
  size -= 7;
  uint64_t total = fp__seg_bytes(&g);
  REQUIRE(total != 0);
  size_t maplen = total;
  if (resize < 0) maplen = total - (size_t)-resize * 67u % total;
  else if (resize > 0) maplen = total + (size_t)resize * 61u;
  unsigned char *map = NULL;
  if (posix_memalign((void **)&map, 4096, total > maplen ? total : maplen))
    return;
  memset(map, 0, total > maplen ? total : maplen);
  struct fp__seg s;
  REQUIRE(fp__seg_layout(map, total, &g, &s) == 0);
  REQUIRE(fp__seg_validate(map, total) == 0);
  /* Patches: 2 bytes of offset (in 4-byte words), 4 bytes of value. */
  for (unsigned k = 0; k < npatch && size >= 6; k++) {
    uint32_t word = (uint32_t)data[0] | (uint32_t)data[1] << 8;
    uint32_t v;
    memcpy(&v, data + 2, 4);
    uint64_t off = (uint64_t)word * 4u % total;
    memcpy(map + off, &v, 4);
    data += 6;
    size -= 6;
  }
  /* The mapping as an attacher sees it: maplen bytes, exactly. */
  unsigned char *view = copy_of(map, maplen);
  free(map);
  if (view == NULL) return;
  int r = fp__seg_validate(view, maplen);
  REQUIRE(r == 0 || r == -EBADMSG || r == -EPROTO);
  if (r == 0) exercise(view, maplen);
  free(view);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  raw(data, size);
  structured(data, size);
  return 0;
}
