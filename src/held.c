/*
 * What a producer handle holds, in its own memory, and how each slot it
 * holds goes back. Everything here runs with the handle's mu held (but
 * fp__view_forget, which takes it, and fp__held_alloc/free, on a handle no
 * other thread uses) and touches of the shared segment only slots this
 * handle owns.
 *
 *   pending list  p->pend_id[i] is the id of our published, uncollected
 *                 task in slot i (0: none); p->head..tail links them in
 *                 submission order, p->npending counts them.
 *   free batch    p->fb: ids of slots we moved DONE (or FILLING, never
 *                 published) -> COLLECTED. A submit takes one back by
 *                 compare-and-swap COLLECTED -> FILLING (fp__slot_reuse);
 *                 the batch is freed COLLECTED -> FREE by compare-and-swap
 *                 too (fp__q_free_collected), as the supervisor frees
 *                 COLLECTED slots for a waiting producer: one of us wins.
 *                 An entry is a task id, so a slot freed and reused
 *                 meanwhile (it carries another id) is left alone.
 *   holds         p->hold[i]: a begun submission (FILLING) or a view
 *                 (DONE) outside the pending list (view.c); p->nheld
 *                 counts them against our share. A result handed out as
 *                 a view holds its slot until released: fp_result_release
 *                 gives it back (and frees a copy's buffer).
 *
 * Killed at any instant, a producer leaves only slots stamped with its
 * client row and gen (FILLING, DONE, COLLECTED), which the supervisor
 * reclaims once the row's lock is free (sup_clients.c); a private pool
 * stops with its owner.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "held.h"
#include "queue.h"
#include "tree.h"

/* ---- The pending list ------------------------------------------------ */

void fp__pend_add(struct fp_pool *p, uint32_t i, uint64_t id, uint64_t root,
                  uint64_t parent) {
  p->pend_id[i] = id;
  p->pend_root[i] = root ? root : id;
  p->pend_parent[i] = parent;
  p->next[i] = FP__NONE;
  p->prev[i] = p->tail;
  if (p->tail != FP__NONE) p->next[p->tail] = i;
  else p->head = i;
  p->tail = i;
  p->npending++;
}

void fp__pend_del(struct fp_pool *p, uint32_t i) {
  if (p->prev[i] != FP__NONE) p->next[p->prev[i]] = p->next[i];
  else p->head = p->next[i];
  if (p->next[i] != FP__NONE) p->prev[p->next[i]] = p->prev[i];
  else p->tail = p->prev[i];
  p->pend_id[i] = 0;
  p->npending--;
}

/* ---- The free batch -------------------------------------------------- */

/*
 * Free our collected slots (mu held). Each entry is a task id: a slot the
 * supervisor freed meanwhile (and maybe reused) no longer carries it, and
 * is left alone. Returns how many were freed.
 */
static int flush_frees(struct fp_pool *p) {
  struct fp__seg *s = &p->seg;
  int n = 0;
  for (unsigned k = 0; k < p->nfb; k++) {
    uint32_t i = (uint32_t)(p->fb[k] & FP__ID_INDEX_MASK);
    struct fp__slot *sl = fp__slot_at(s, i);
    if (atomic_load(&sl->id) == p->fb[k]) n += fp__q_free_collected(s, i);
  }
  p->nfb = 0;
  return n;
}

/*
 * Take back the newest of our collected slots for a new task (mu held):
 * COLLECTED -> FILLING naming us, by compare-and-swap, which fails if the
 * supervisor freed it meanwhile (fp__q_free_collected). Then stamped as
 * fp__q_take_free does (fp__slot_stamp). Dying after the swap leaves a
 * FILLING slot that names us: reclaimed with us. NONE when we hold none.
 */
uint32_t fp__slot_reuse(struct fp_pool *p) {
  struct fp__seg *s = &p->seg;
  while (p->nfb > 0) {
    uint64_t id = p->fb[--p->nfb];
    uint32_t i = (uint32_t)(id & FP__ID_INDEX_MASK);
    struct fp__slot *sl = fp__slot_at(s, i);
    if (atomic_load(&sl->id) != id ||
        !fp__slot_cas(sl, FP__SLOT_COLLECTED,
                      fp__slot_filling_word(p->client, p->client_gen)))
      continue;
    fp__slot_stamp(sl, i, p->client, p->client_gen);
    return i;
  }
  return FP__NONE;
}

/*
 * Give back our FILLING slot i, never published (mu held): COLLECTED, on
 * our batch of frees, so our next submit reuses it; with the batch full,
 * the batch is freed first.
 */
void fp__slot_give_back(struct fp_pool *p, uint32_t i) {
  struct fp__slot *sl = fp__slot_at(&p->seg, i);
  uint64_t id = atomic_load(&sl->id);
  fp__slot_set(sl, FP__SLOT_COLLECTED);
  if (p->nfb == FP__FREE_BATCH) flush_frees(p);
  p->fb[p->nfb++] = id;
}

/*
 * Our result in slot i (task `id`, DONE, off our pending list: delivered,
 * or a view released) is done with (mu held): split out of fp__deliver()
 * for fp_view_release. Never fails; the slot is COLLECTED after it, maybe
 * freed already.
 */
void fp__slot_retire(struct fp_pool *p, uint32_t i, uint64_t id) {
  struct fp__seg *s = &p->seg;
  struct fp__slot *sl = fp__slot_at(s, i);
  /*
   * DONE -> COLLECTED, and the slot goes on our batch of frees, which our
   * next submits reuse (fp__slot_reuse). Freed for everyone when the batch is
   * full, when a producer waits for space (the supervisor also frees
   * COLLECTED slots for those), and, in a named pool, when nothing of ours
   * is pending: an idle producer holds no capacity other producers could
   * use. (A private pool has one producer: its batch is capacity only it
   * can use, kept for its next submit.)
   */
  fp__slot_set(sl, FP__SLOT_COLLECTED);
  if (p->nfb == FP__FREE_BATCH) flush_frees(p);
  p->fb[p->nfb++] = id;
  if (p->nfb == FP__FREE_BATCH || (p->npending == 0 && p->attached) ||
      fp__pcount(&s->hdr->p_asleep, s->nclients) > 0) {
    flush_frees(p);
    fp__wake_space(s);
  }
}

/* ---- Holds: begun submissions and views ------------------------------- */

/*
 * Handles that have a hold array, for fp_result_release() on a view.
 * Lock order: reg_mu, then a handle's mu. fp__hold_ready takes reg_mu under
 * mu, but only for a handle not yet listed, which fp__view_forget cannot
 * be waiting for.
 */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fp_pool *reg_head;

/*
 * The hold array (mu held), allocated at first use and registered.
 * Returns 0 or -ENOMEM (nothing changed).
 */
int fp__hold_ready(struct fp_pool *p) {
  if (p->hold != NULL) return 0;
  p->hold = calloc(p->seg.nslots, sizeof(*p->hold));
  if (p->hold == NULL) return -ENOMEM;
  pthread_mutex_lock(&reg_mu);
  p->view_next = reg_head;
  reg_head = p;
  pthread_mutex_unlock(&reg_mu);
  return 0;
}

/* fp_pool_free: forget this handle's holds (unregister it). */
static void view_free(struct fp_pool *p) {
  if (p->hold == NULL) return;
  pthread_mutex_lock(&reg_mu);
  for (struct fp_pool **q = &reg_head; *q != NULL; q = &(*q)->view_next)
    if (*q == p) {
      *q = p->view_next;
      break;
    }
  pthread_mutex_unlock(&reg_mu);
  free(p->hold);
  p->hold = NULL;
  p->nheld = 0;
}

/* Slot base of this pool's segment, and the byte after the last slot. */
int fp__in_slots(const struct fp_pool *p, const void *ptr) {
  const unsigned char *b = p->seg.base + p->seg.slots_off;
  const unsigned char *c = ptr;
  return c >= b && c < b + (uint64_t)p->seg.nslots * p->seg.slot_stride;
}

/* End hold i (mu held). */
void fp__unhold(struct fp_pool *p, uint32_t i) {
  p->hold[i].kind = FP__HOLD_NONE;
  p->hold[i].id = 0;
  p->nheld--;
}

int fp__view_drop(struct fp_pool *p, fp_result *res) {
  if (!fp__is_view(res)) return 0;
  if (!fp__in_slots(p, res->output)) return -EINVAL;
  uint32_t i = (uint32_t)(res->id & FP__ID_INDEX_MASK);
  uint64_t id = res->id;
  fp_result_init(res);
  if (p->hold == NULL || i >= p->seg.nslots ||
      p->hold[i].kind != FP__HOLD_VIEW || p->hold[i].id != id)
    return -ENOENT;
  fp__unhold(p, i);
  struct fp__slot *sl = fp__slot_at(&p->seg, i);
  /*
   * Still the DONE result we showed? Anything else is damage (a stray
   * write): touch nothing, as fp__deliver() does, rather than free a slot
   * that a rebuild may have handed to someone.
   */
  if (atomic_load(&sl->id) != id || fp__slot_word(sl) != FP__SLOT_DONE) {
    atomic_fetch_add(&p->seg.hdr->c.corrupt, 1);
    return 0;
  }
  fp__slot_retire(p, i, id);
  return 0;
}

void fp__view_forget(fp_result *res) {
  pthread_mutex_lock(&reg_mu);
  for (struct fp_pool *p = reg_head; p != NULL; p = p->view_next)
    if (fp__in_slots(p, res->output)) {
      pthread_mutex_lock(&p->mu);
      fp__view_drop(p, res);
      pthread_mutex_unlock(&p->mu);
      break;
    }
  pthread_mutex_unlock(&reg_mu);
  /* No pool maps it (freed already): nothing to give back. */
  fp_result_init(res);
}

/* ---- fp_result's own memory: a copy, or a view (a hold) ---------------- */

FP_EXTERN void fp_result_init_sized(fp_result *res, size_t size) {
  fp_result d;
  memset(&d, 0, sizeof(d));
  d.exit_code = -1;
  fp__sized_init(res, size, &d, sizeof(d));
}

FP_EXTERN void fp_result_release(fp_result *user) {
  fp_result tmp, *res = user ? fp__res_adopt(user, &tmp) : NULL;
  if (res == NULL) return; /* NULL, or no layout of ours: nothing to do */
  /* A view (view.c) points into a slot: give that back, free nothing. */
  if (fp__is_view(res)) fp__view_forget(res);
  else fp__outbuf_free(res->output);
  fp_result_init(res);
  fp__res_done(user, res);
}

/* ---- Copied outputs (struct fp__outbuf) -------------------------------- */

static uintptr_t outbuf_secret;
static pthread_once_t outbuf_once = PTHREAD_ONCE_INIT;

static void outbuf_draw(void) {
  uintptr_t v = 0;
  ssize_t n;
  do n = getrandom(&v, sizeof(v), GRND_NONBLOCK);
  while (n < 0 && errno == EINTR);
  /* No entropy yet (early boot): something no other process knows in
   * advance either, our address space layout and the time. */
  if (n != (ssize_t)sizeof(v))
    v = (uintptr_t)&v ^ (uintptr_t)fp__now_ns() ^ ((uintptr_t)getpid() << 20);
  outbuf_secret = v | 1; /* never 0: a zeroed header is no tag */
}

static uintptr_t outbuf_tag(const unsigned char *data) {
  pthread_once(&outbuf_once, outbuf_draw);
  return (uintptr_t)data ^ outbuf_secret;
}

size_t fp__outbuf_cap(const unsigned char *out) {
  if (out == NULL) return 0;
  struct fp__outbuf h;
  memcpy(&h, out - sizeof(h), sizeof(h));
  return h.tag == outbuf_tag(out) ? h.cap : 0;
}

int fp__outbuf_room(fp_result *res, size_t n) {
  size_t cap = fp__outbuf_cap(res->output);
  if (n + 1 <= cap) return 0;
  if (n > SIZE_MAX - sizeof(struct fp__outbuf) - 1) return -ENOMEM;
  unsigned char *old =
      res->output ? res->output - sizeof(struct fp__outbuf) : NULL;
  unsigned char *b = realloc(old, sizeof(struct fp__outbuf) + n + 1);
  if (b == NULL) return -ENOMEM;
  unsigned char *data = b + sizeof(struct fp__outbuf);
  struct fp__outbuf h = {n + 1, outbuf_tag(data)};
  memcpy(b, &h, sizeof(h));
  res->output = data;
  return 0;
}

void fp__outbuf_free(unsigned char *out) {
  if (fp__outbuf_cap(out) == 0) return; /* NULL, or not ours */
  unsigned char *b = out - sizeof(struct fp__outbuf);
  struct fp__outbuf h = {0, 0};
  memcpy(b, &h, sizeof(h)); /* a stale pointer is no copy any more */
  free(b);
}

/* ---- The handle's local memory ---------------------------------------- */

int fp__held_alloc(struct fp_pool *p, uint32_t n) {
  p->pend_id = calloc(n, sizeof(*p->pend_id));
  p->pend_root = calloc(n, sizeof(*p->pend_root));
  p->pend_parent = calloc(n, sizeof(*p->pend_parent));
  p->next = calloc(n, sizeof(*p->next));
  p->prev = calloc(n, sizeof(*p->prev));
  if (p->pend_id == NULL || p->pend_root == NULL || p->pend_parent == NULL ||
      p->next == NULL || p->prev == NULL)
    return -ENOMEM; /* fp__held_free() releases what was had */
  p->head = p->tail = FP__NONE;
  return 0;
}

void fp__held_free(struct fp_pool *p) {
  view_free(p);
  fp__tree_free(p);
  free(p->pend_root);
  free(p->pend_parent);
  free(p->pend_id);
  free(p->next);
  free(p->prev);
}
