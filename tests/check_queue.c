/*
 * Unit tests of the queue (ring, stack, robust lock repair), the slot state
 * transitions and segment validation, on a segment mapped in this process.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "queue.h"
#include "suites.h"

static struct fp__seg seg;

static void setup(void) {
  struct fp__geometry g = {8, 2, 1, 64, 64};
  ck_assert_int_eq(fp__seg_create_anon(&seg, &g), 0);
  atomic_store(&seg.hdr->state, FP__POOL_RUNNING);
}

static void teardown(void) { fp__seg_unmap(&seg); }

static uint32_t state_of(uint32_t i) {
  return atomic_load(&fp__slot_at(&seg, i)->state);
}

/* Take a free slot and publish it, as a producer does. */
static uint32_t submit_one(void) {
  ck_assert_int_eq(fp__q_lock(&seg), 0);
  uint32_t i = fp__q_take_free(&seg, 0, 0);
  ck_assert_uint_ne(i, FP__NONE);
  fp__q_put_ready(&seg, i);
  fp__q_unlock(&seg);
  return i;
}

START_TEST(test_free_stack_exhausts) {
  ck_assert_int_eq(fp__q_lock(&seg), 0);
  for (uint32_t k = 0; k < 8; k++) {
    uint32_t i = fp__q_take_free(&seg, 0, 0);
    ck_assert_uint_lt(i, 8);
    ck_assert_uint_eq(state_of(i), FP__SLOT_FILLING);
  }
  ck_assert_uint_eq(fp__q_take_free(&seg, 0, 0), FP__NONE);
  fp__q_unlock(&seg);
}
END_TEST

START_TEST(test_ids_unique_and_encode_index) {
  uint64_t seen[16];
  for (int k = 0; k < 16; k++) {
    ck_assert_int_eq(fp__q_lock(&seg), 0);
    uint32_t i = fp__q_take_free(&seg, 0, 0);
    seen[k] = atomic_load(&fp__slot_at(&seg, i)->id);
    ck_assert_uint_ne(seen[k], 0);
    ck_assert_uint_eq(seen[k] & FP__ID_INDEX_MASK, i);
    fp__q_put_free(&seg, i); /* reuse: same slot, next generation */
    fp__q_unlock(&seg);
    for (int j = 0; j < k; j++) ck_assert_uint_ne(seen[j], seen[k]);
  }
}
END_TEST

START_TEST(test_ready_ring_is_fifo) {
  uint32_t order[8];
  for (int k = 0; k < 8; k++) order[k] = submit_one();
  ck_assert_uint_eq(atomic_load(&seg.hdr->q.ready_len), 8);
  ck_assert_uint_eq(seg.hdr->q.next_seq, 8);
  ck_assert_int_eq(fp__q_lock(&seg), 0);
  for (int k = 0; k < 8; k++) {
    uint32_t i = fp__q_take_ready(&seg);
    ck_assert_uint_eq(i, order[k]);
    atomic_store(&fp__slot_at(&seg, i)->state, FP__SLOT_RUNNING);
  }
  ck_assert_uint_eq(fp__q_take_ready(&seg), FP__NONE);
  fp__q_unlock(&seg);
}
END_TEST

START_TEST(test_ring_wraps_around) {
  ck_assert_int_eq(fp__q_lock(&seg), 0);
  fp__q_unlock(&seg);
  for (int round = 0; round < 50; round++) {
    uint32_t a = submit_one(), b = submit_one(), c = submit_one();
    ck_assert_int_eq(fp__q_lock(&seg), 0);
    ck_assert_uint_eq(fp__q_take_ready(&seg), a);
    ck_assert_uint_eq(fp__q_take_ready(&seg), b);
    ck_assert_uint_eq(fp__q_take_ready(&seg), c);
    fp__q_put_free(&seg, a);
    fp__q_put_free(&seg, b);
    fp__q_put_free(&seg, c);
    fp__q_unlock(&seg);
  }
  ck_assert_uint_eq(seg.hdr->q.free_top, 8);
}
END_TEST

START_TEST(test_take_ready_skips_non_ready) {
  uint32_t a = submit_one(), b = submit_one();
  /* A corrupt ring entry: the slot was settled elsewhere. */
  atomic_store(&fp__slot_at(&seg, a)->state, FP__SLOT_DONE);
  ck_assert_int_eq(fp__q_lock(&seg), 0);
  ck_assert_uint_eq(fp__q_take_ready(&seg), b);
  ck_assert_uint_eq(fp__q_take_ready(&seg), FP__NONE);
  fp__q_unlock(&seg);
}
END_TEST

START_TEST(test_rebuild_from_states) {
  uint32_t a = submit_one(), b = submit_one(), c = submit_one();
  /* b runs, then the bookkeeping is trashed. */
  atomic_store(&fp__slot_at(&seg, b)->state, FP__SLOT_RUNNING);
  fp__client_at(&seg, 0)->qhead[0] = 12345;
  atomic_store(&seg.hdr->q.ready_len, 999);
  seg.hdr->q.free_top = 77;
  ck_assert_int_eq(fp__q_lock(&seg), 0);
  fp__q_rebuild(&seg);
  ck_assert_uint_eq(atomic_load(&seg.hdr->q.ready_len), 2);
  ck_assert_uint_eq(seg.hdr->q.free_top, 5);
  ck_assert_uint_eq(fp__q_take_ready(&seg), a);
  ck_assert_uint_eq(fp__q_take_ready(&seg), c);
  fp__q_unlock(&seg);
}
END_TEST

/* A child takes the lock, half-publishes a slot, and is SIGKILLed. */
START_TEST(test_lock_holder_death_is_repaired) {
  uint32_t before = submit_one();
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (fp__q_lock(&seg) != 0) _exit(2);
    uint32_t i = fp__q_take_free(&seg, 0, 0);
    struct fp__slot *sl = fp__slot_at(&seg, i);
    sl->seq = seg.hdr->q.next_seq;
    atomic_store(&sl->state, FP__SLOT_READY); /* but never pushed */
    raise(SIGKILL);
    _exit(3);
  }
  int ws;
  ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
  ck_assert(WIFSIGNALED(ws));
  ck_assert_int_eq(fp__q_lock(&seg), 0); /* not a hang, not an error */
  ck_assert_uint_eq(atomic_load(&seg.hdr->c.repairs), 1);
  ck_assert_uint_eq(atomic_load(&seg.hdr->q.ready_len), 2);
  ck_assert_uint_eq(seg.hdr->q.next_seq, 2); /* the half-publish counts */
  ck_assert_uint_eq(fp__q_take_ready(&seg), before);
  uint32_t second = fp__q_take_ready(&seg);
  ck_assert_uint_ne(second, FP__NONE);
  ck_assert_uint_eq(state_of(second), FP__SLOT_READY);
  fp__q_unlock(&seg);
  /* The lock is consistent again: a second locker sees no repair. */
  ck_assert_int_eq(fp__q_lock(&seg), 0);
  fp__q_unlock(&seg);
  ck_assert_uint_eq(atomic_load(&seg.hdr->c.repairs), 1);
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
  tcase_add_test(tc, test_free_stack_exhausts);
  tcase_add_test(tc, test_ids_unique_and_encode_index);
  tcase_add_test(tc, test_ready_ring_is_fifo);
  tcase_add_test(tc, test_ring_wraps_around);
  tcase_add_test(tc, test_take_ready_skips_non_ready);
  tcase_add_test(tc, test_rebuild_from_states);
  tcase_add_test(tc, test_lock_holder_death_is_repaired);
  tcase_add_test(tc, test_validate_accepts_own_segment);
  tcase_add_test(tc, test_validate_rejects_bad_headers);
  tcase_add_test(tc, test_segment_size_limits);
  suite_add_tcase(s, tc);
  return s;
}
