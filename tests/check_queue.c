/*
 * Unit tests of the queue (ready rings, free slots, sweeps), the slot
 * state transitions and segment validation, on a segment mapped in this
 * process.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "queue.h"
#include "suites.h"

static struct fp__seg seg;

static struct fp__ring_writer tails[4]; /* row 0's rings, (2) the retry */
static struct fp__taker taker;
static uint32_t cursor; /* the producer's free-slot scan */
static _Atomic uint32_t row_slot;

static void setup(void) {
  struct fp__geometry g = {8, 2, 1, 64, 64};
  ck_assert_int_eq(fp__seg_create_anon(&seg, &g), 0);
  atomic_store(&seg.hdr->state, FP__POOL_RUNNING);
  atomic_store(&seg.hdr->q.clients_hwm, 1);
  memset(tails, 0, sizeof(tails));
  memset(&taker, 0, sizeof(taker));
  cursor = 0;
}

static void teardown(void) { fp__seg_unmap(&seg); }

static uint32_t state_of(uint32_t i) {
  return fp__slot_state(fp__slot_at(&seg, i));
}

/* Take a free slot and publish it on row 0's ring `prio`, as a producer. */
static uint32_t submit_prio(int prio) {
  uint32_t i = fp__q_take_free(&seg, 0, 0, &cursor);
  ck_assert_uint_ne(i, FP__NONE);
  ck_assert_int_eq(fp__q_push(&seg, (uint32_t)prio, &tails[prio], i), 0);
  return i;
}

static uint32_t submit_one(void) { return submit_prio(0); }

/* Take a task as worker row 1 would. */
static uint32_t take_one(void) {
  return fp__q_take(&seg, &taker, 1, &row_slot);
}

/* Finish and free slot i (RUNNING): DONE, COLLECTED, FREE. */
static void finish(uint32_t i) {
  struct fp__slot *sl = fp__slot_at(&seg, i);
  fp__slot_end(&seg, sl, FP_OK, 0, 0, -1, 0, 0);
  fp__slot_set(sl, FP__SLOT_COLLECTED);
  ck_assert_int_eq(fp__q_free_collected(&seg, i), 1);
}

/* Free slots run out, each claimed once, naming its producer and gen. */
START_TEST(test_free_slots_exhaust) {
  ck_assert_uint_eq(atomic_load(&seg.hdr->q.nfree), 8);
  unsigned seen = 0;
  for (int k = 0; k < 8; k++) {
    uint32_t i = fp__q_take_free(&seg, 0, 5, &cursor);
    ck_assert_uint_lt(i, 8);
    ck_assert_uint_eq(seen & (1u << i), 0);
    seen |= 1u << i;
    uint32_t w = fp__slot_word(fp__slot_at(&seg, i));
    ck_assert_uint_eq(w & FP__SLOT_STATE_MASK, FP__SLOT_FILLING);
    ck_assert_uint_eq(fp__slot_filler(w), 0);
    ck_assert(fp__slot_filled_at(w, 5));
    ck_assert(!fp__slot_filled_at(w, 6));
  }
  ck_assert_uint_eq(atomic_load(&seg.hdr->q.nfree), 0);
  ck_assert_uint_eq(fp__q_take_free(&seg, 0, 0, &cursor), FP__NONE);
  /* A count a death left wrong (0 here) is set right by a recount. */
  fp__q_put_free(&seg, 2);
  atomic_store(&seg.hdr->q.nfree, 0);
  ck_assert_uint_eq(fp__q_take_free(&seg, 0, 0, &cursor), FP__NONE);
  ck_assert_uint_eq(fp__q_recount(&seg), 1);
  ck_assert_uint_eq(fp__q_take_free(&seg, 0, 0, &cursor), 2);
}
END_TEST

START_TEST(test_ids_unique_and_encode_index) {
  uint64_t seen[16];
  for (int k = 0; k < 16; k++) {
    uint32_t i = fp__q_take_free(&seg, 0, 0, &cursor);
    uint64_t id = atomic_load(&fp__slot_at(&seg, i)->id);
    ck_assert_uint_eq(id & FP__ID_INDEX_MASK, i);
    for (int j = 0; j < k; j++) ck_assert_uint_ne(seen[j], id);
    seen[k] = id;
    fp__q_put_free(&seg, i); /* reuse: next generation */
    cursor = i;
  }
}
END_TEST

START_TEST(test_ready_ring_is_fifo) {
  uint32_t order[8];
  for (int k = 0; k < 8; k++) order[k] = submit_one();
  ck_assert_uint_eq(fp__q_queued(&seg), 8);
  ck_assert_uint_eq(fp__q_submitted(&seg), 8);
  for (int k = 0; k < 8; k++) {
    uint32_t i = take_one();
    ck_assert_uint_eq(i, order[k]);
    /* The claim names the worker row, in the word and in the row. */
    ck_assert_uint_eq(fp__slot_word(fp__slot_at(&seg, i)),
                      fp__slot_make(FP__SLOT_RUNNING, 1));
    ck_assert_uint_eq(atomic_load(&row_slot), i);
  }
  ck_assert_uint_eq(take_one(), FP__NONE);
  ck_assert_uint_eq(fp__q_queued(&seg), 0);
}
END_TEST

START_TEST(test_ring_wraps_around) {
  /* Many laps of an 8-entry ring, three tasks at a time. */
  for (int round = 0; round < 40; round++) {
    uint32_t a = submit_one(), b = submit_one(), c = submit_one();
    ck_assert_uint_eq(take_one(), a);
    ck_assert_uint_eq(take_one(), b);
    ck_assert_uint_eq(take_one(), c);
    finish(a);
    finish(b);
    finish(c);
  }
  ck_assert_uint_eq(atomic_load(&seg.hdr->q.nfree), 8);
  ck_assert_uint_eq(fp__q_submitted(&seg), 120);
}
END_TEST

/* A cancelled task's entry is skipped; its gen guards against ABA. */
START_TEST(test_take_skips_stale_entries) {
  uint32_t a = submit_one(), b = submit_one();
  struct fp__slot *sa = fp__slot_at(&seg, a);
  uint64_t id = atomic_load(&sa->id);
  /* A claim from another task's READY word (a later gen) fails. */
  ck_assert_int_eq(fp__slot_claim_end(
                       sa, fp__slot_ready_word(id + (1ull << FP__ID_SHIFT)), 1),
                   0);
  ck_assert_int_eq(fp__slot_claim_end(sa, fp__slot_ready_word(id), 1), 1);
  ck_assert_uint_eq(take_one(), b);
  ck_assert_uint_eq(take_one(), FP__NONE);
  ck_assert_uint_eq(state_of(a), FP__SLOT_ENDING);
}
END_TEST

/* High first, but a normal task goes after FP__HI_BURST highs in a row. */
START_TEST(test_priorities_and_burst) {
  uint32_t n = submit_prio(0);
  uint32_t hi[6];
  for (int k = 0; k < 6; k++) hi[k] = submit_prio(1);
  for (unsigned k = 0; k < FP__HI_BURST; k++)
    ck_assert_uint_eq(take_one(), hi[k]);
  ck_assert_uint_eq(take_one(), n);
  ck_assert_uint_eq(take_one(), hi[4]);
  ck_assert_uint_eq(take_one(), hi[5]);
}
END_TEST

static int all_gone(void *ctx, uint32_t row, uint32_t gen) {
  (void)ctx;
  (void)row;
  (void)gen;
  return 1;
}

/*
 * A producer killed between a slot's READY and its ring's tail leaves a
 * task no ring holds: the sweep finds it (counted for a gone row), and a
 * second sweep finds nothing more. A duplicate entry runs the task once.
 */
START_TEST(test_sweep_requeues_unreachable) {
  uint32_t a = submit_one();
  uint32_t b = fp__q_take_free(&seg, 0, 0, &cursor);
  struct fp__slot *sb = fp__slot_at(&seg, b);
  fp__slot_set(sb, fp__slot_ready_word(atomic_load(&sb->id)));
  struct fp__ring_writer rt = {0, 0};
  uint32_t rescued = 0;
  ck_assert_int_eq(fp__q_sweep(&seg, &rt, all_gone, NULL, NULL, &rescued), 1);
  ck_assert_uint_eq(rescued, 1);
  ck_assert_int_eq(fp__q_sweep(&seg, &rt, all_gone, NULL, NULL, &rescued), 0);
  ck_assert_uint_eq(rescued, 0);
  ck_assert_uint_eq(take_one(), b); /* the retry ring goes first */
  ck_assert_uint_eq(take_one(), a);
  ck_assert_uint_eq(take_one(), FP__NONE);
  /* Queue a READY task twice: it is claimed once. */
  uint32_t c = submit_one();
  ck_assert_int_eq(fp__q_push_ready(&seg, FP__RING_RETRY(&seg), &rt, c), 0);
  ck_assert_uint_eq(take_one(), c);
  ck_assert_uint_eq(take_one(), FP__NONE);
  ck_assert_uint_eq(atomic_load(&seg.hdr->q.sweep), 0);
}
END_TEST

/*
 * A READY task no ring holds, of a live producer, with no damage seen: a
 * producer between READY and its tail, or a stray write into its entry.
 * The first tick's sweep only remembers it; the next one queues it.
 */
START_TEST(test_sweep_requeues_what_stays_unreachable) {
  uint32_t a = fp__q_take_free(&seg, 0, 0, &cursor);
  struct fp__slot *sa = fp__slot_at(&seg, a);
  fp__slot_set(sa, fp__slot_ready_word(atomic_load(&sa->id)));
  uint32_t suspect[8] = {0};
  struct fp__ring_writer rt = {0, 0};
  uint32_t rescued = 7;
  ck_assert_int_eq(fp__q_sweep(&seg, &rt, NULL, NULL, suspect, &rescued), 0);
  ck_assert_uint_eq(take_one(), FP__NONE);
  ck_assert_int_eq(fp__q_sweep(&seg, &rt, NULL, NULL, suspect, &rescued), 1);
  ck_assert_uint_eq(rescued, 0); /* its producer lives: its tail counts */
  ck_assert_uint_eq(take_one(), a);
  /* A reachable one is never queued again, however often it is swept. */
  uint32_t b = submit_one();
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(fp__q_sweep(&seg, &rt, NULL, NULL, suspect, NULL), 0);
  ck_assert_uint_eq(take_one(), b);
}
END_TEST

/* A stray write into a ring reads as empty and asks for a sweep. */
START_TEST(test_damaged_ring_is_swept) {
  uint32_t a = submit_one();
  struct fp__ring *rg = fp__q_ring(&seg, 0);
  atomic_store(&rg->head, 1000); /* past the tail */
  ck_assert_uint_eq(take_one(), FP__NONE);
  ck_assert_uint_eq(atomic_load(&seg.hdr->q.sweep), 1);
  struct fp__ring_writer rt = {0, 0};
  ck_assert_int_eq(fp__q_sweep(&seg, &rt, NULL, NULL, NULL, NULL), 1);
  ck_assert_uint_eq(take_one(), a);
  /* An entry naming no slot is skipped. */
  uint32_t b = submit_one();
  uint64_t h = atomic_load(&rg->head);
  atomic_store(&fp__q_ents(&seg, 0)[h & (seg.ring_cap - 1)], 12345);
  ck_assert_uint_eq(take_one(), FP__NONE);
  ck_assert_int_eq(fp__q_sweep(&seg, &rt, NULL, NULL, NULL, NULL), 1);
  ck_assert_uint_eq(take_one(), b);
}
END_TEST

/* A full ring refuses a push (nothing changed) until takers move on. */
START_TEST(test_full_ring_refuses) {
  for (int k = 0; k < 8; k++) submit_one();
  struct fp__slot *sl = fp__slot_at(&seg, 0);
  uint32_t before = fp__slot_word(sl);
  struct fp__ring_writer t = tails[0];
  ck_assert_int_eq(fp__q_push(&seg, 0, &t, 0), -ENOSPC);
  ck_assert_uint_eq(t.tail, tails[0].tail);
  ck_assert_uint_eq(fp__slot_word(sl), before);
}
END_TEST

/*
 * Two processes scan for free slots at once, 2000 claims each: every
 * claim is a slot nobody else holds (no lock: the compare-and-swap).
 */
START_TEST(test_concurrent_claims_are_exclusive) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  int me = pid == 0;
  uint32_t c = me ? 4 : 0, bad = 0;
  for (int k = 0; k < 2000; k++) {
    uint32_t i = fp__q_take_free(&seg, (uint32_t)me, 1, &c);
    if (i == FP__NONE) {
      k--;
      continue;
    }
    struct fp__slot *sl = fp__slot_at(&seg, i);
    /* Ours alone: the word names us until we free it. */
    bad += fp__slot_filler(fp__slot_word(sl)) != (uint32_t)me;
    sl->in_len = (uint32_t)me;
    bad += sl->in_len != (uint32_t)me;
    fp__q_put_free(&seg, i);
  }
  if (me) _exit(bad == 0 ? 0 : 1);
  int ws;
  ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
  ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
  ck_assert_uint_eq(bad, 0);
  ck_assert_uint_eq(fp__q_recount(&seg), 8);
}
END_TEST

START_TEST(test_validate_accepts_own_segment) {
  ck_assert_int_eq(fp__seg_validate(seg.base, seg.len), 0);
}
END_TEST

START_TEST(test_validate_rejects_bad_headers) {
  unsigned char *copy = malloc(seg.len);
  ck_assert_ptr_nonnull(copy);
  struct fp__hdr *h = (struct fp__hdr *)copy;

  memcpy(copy, seg.base, seg.len);
  h->magic ^= 1;
  ck_assert_int_eq(fp__seg_validate(copy, seg.len), -EBADMSG);

  memcpy(copy, seg.base, seg.len);
  h->version = FP__LAYOUT_VERSION + 1;
  ck_assert_int_eq(fp__seg_validate(copy, seg.len), -EPROTO);

  memcpy(copy, seg.base, seg.len);
  ck_assert_int_eq(fp__seg_validate(copy, seg.len - 4096), -EBADMSG);
  ck_assert_int_eq(fp__seg_validate(copy, 16), -EBADMSG);

  memcpy(copy, seg.base, seg.len);
  h->nslots = 0xffffffffu;
  ck_assert_int_eq(fp__seg_validate(copy, seg.len), -EBADMSG);

  memcpy(copy, seg.base, seg.len);
  h->slots_off += 64;
  ck_assert_int_eq(fp__seg_validate(copy, seg.len), -EBADMSG);

  memcpy(copy, seg.base, seg.len);
  h->max_output = 1u << 30;
  ck_assert_int_eq(fp__seg_validate(copy, seg.len), -EBADMSG);
  free(copy);
}
END_TEST

START_TEST(test_segment_size_limits) {
  struct fp__geometry ok = {256, 4, 1, 65536, 65536};
  ck_assert_uint_gt(fp__seg_bytes(&ok), 256ull * 131072);
  struct fp__geometry huge = {FP_MAX_SLOTS, 4, 1, FP_MAX_IO_BYTES,
                              FP_MAX_IO_BYTES};
  ck_assert_uint_eq(fp__seg_bytes(&huge), 0);
  struct fp__geometry zero = {0, 4, 1, 64, 64};
  ck_assert_uint_eq(fp__seg_bytes(&zero), 0);
}
END_TEST

Suite *make_queue_suite(void) {
  Suite *s = suite_create("queue");
  TCase *tc = tcase_create("ring");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_free_slots_exhaust);
  tcase_add_test(tc, test_ids_unique_and_encode_index);
  tcase_add_test(tc, test_ready_ring_is_fifo);
  tcase_add_test(tc, test_ring_wraps_around);
  tcase_add_test(tc, test_take_skips_stale_entries);
  tcase_add_test(tc, test_priorities_and_burst);
  tcase_add_test(tc, test_sweep_requeues_unreachable);
  tcase_add_test(tc, test_damaged_ring_is_swept);
  tcase_add_test(tc, test_sweep_requeues_what_stays_unreachable);
  tcase_add_test(tc, test_full_ring_refuses);
  tcase_add_test(tc, test_concurrent_claims_are_exclusive);
  tcase_add_test(tc, test_validate_accepts_own_segment);
  tcase_add_test(tc, test_validate_rejects_bad_headers);
  tcase_add_test(tc, test_segment_size_limits);
  suite_add_tcase(s, tc);
  return s;
}
