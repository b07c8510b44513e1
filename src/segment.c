/*
 * Laying out, mapping and validating the shared segment.
 */
#include "segment.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* Offsets of every region for a geometry; 0 in *total on overflow. */
static void layout(const struct fp__geometry *g, uint64_t *ring_off,
                   uint64_t *rows_off, uint64_t *clients_off,
                   uint64_t *slots_off, uint32_t *stride, uint64_t *total) {
  uint64_t off = round_up(sizeof(struct fp__hdr), FP__CACHELINE);
  *ring_off = off; /* ready ring entries */
  off += (uint64_t)fp__nrings(g->nclients) * fp__ring_cap(g->nslots) *
         sizeof(uint32_t);
  off = round_up(off, FP__CACHELINE);
  *rows_off = off;
  off += (uint64_t)g->nrows * sizeof(struct fp__row);
  *clients_off = off;
  off += (uint64_t)g->nclients * sizeof(struct fp__client);
  off = round_up(off, FP__CACHELINE); /* crash reports: see fp__report_at */
  off += (uint64_t)g->nrows * FP__REPORT_BYTES;
  off = round_up(off, 4096);
  *slots_off = off;
  uint64_t st = FP__SLOT_HDR_BYTES + round_up(g->max_input, FP__CACHELINE) +
                round_up(g->max_output, FP__CACHELINE);
  *stride = st > UINT32_MAX ? 0 : (uint32_t)st;
  off += st * g->nslots;
  *total = round_up(off, 4096);
  if (*stride == 0 || *total > FP_MAX_SEGMENT_BYTES) *total = 0;
}

uint64_t fp__seg_bytes(const struct fp__geometry *g) {
  uint64_t a, b, c, d, total;
  uint32_t stride;
  if (g->nslots == 0 || g->nslots > FP_MAX_SLOTS || g->nrows == 0 ||
      g->nclients == 0 || g->nclients > 4096 ||
      g->max_input > FP_MAX_IO_BYTES || g->max_output > FP_MAX_IO_BYTES)
    return 0;
  layout(g, &a, &b, &c, &d, &stride, &total);
  return total;
}

int fp__seg_layout(void *map, size_t len, const struct fp__geometry *g,
                   struct fp__seg *seg) {
  uint64_t ring_off, rows_off, clients_off, slots_off, total;
  uint32_t stride;
  if (fp__seg_bytes(g) == 0) return -EINVAL;
  layout(g, &ring_off, &rows_off, &clients_off, &slots_off, &stride, &total);
  if (total > len) return -EINVAL;

  /* The memory is zeroed: every slot is FREE, every row EMPTY. */
  struct fp__hdr *h = map;
  h->version = FP__LAYOUT_VERSION;
  h->hdr_bytes = (uint32_t)sizeof(*h);
  h->seg_bytes = total;
  h->nslots = g->nslots;
  h->nrows = g->nrows;
  h->nclients = g->nclients;
  h->max_input = g->max_input;
  h->max_output = g->max_output;
  h->slot_stride = stride;
  h->ring_off = ring_off;
  h->rows_off = rows_off;
  h->clients_off = clients_off;
  h->slots_off = slots_off;
  h->uid = (uint32_t)geteuid();
  /* See spin.h; FORKPOOL_SPIN_MAX overrides it for experiments (0: off). */
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  h->ncpu = ncpu > 0 ? (uint32_t)ncpu : 1;
  const char *env = getenv("FORKPOOL_SPIN_MAX");
  h->spin_max = env != NULL ? (uint32_t)atoi(env)
                : ncpu > 2  ? (uint32_t)ncpu - 1
                            : 1;
  atomic_store(&h->state, FP__POOL_STARTING);

  /* Rings and wake-up words: all 0 (the memory is zeroed), that is empty. */

  seg->hdr = h;
  seg->base = map;
  seg->len = total;
  seg->maplen = 0;
  seg->fd = -1;
  fp__seg_bind(seg);
  atomic_store(&h->q.nfree, g->nslots); /* every slot is FREE */
  for (uint32_t i = 0; i < g->nrows; i++)
    atomic_store(&fp__row_at(seg, i)->slot, FP__NONE);
  /* Magic last: an attacher that sees it sees a complete layout. */
  atomic_thread_fence(memory_order_release);
  h->magic = FP__MAGIC;
  return 0;
}

void fp__seg_bind(struct fp__seg *seg) {
  const struct fp__hdr *h = seg->hdr;
  seg->nslots = h->nslots;
  seg->nrows = h->nrows;
  seg->nclients = h->nclients;
  seg->max_input = h->max_input;
  seg->max_output = h->max_output;
  seg->slot_stride = h->slot_stride;
  seg->ring_off = h->ring_off;
  seg->rows_off = h->rows_off;
  seg->clients_off = h->clients_off;
  seg->slots_off = h->slots_off;
  seg->ring_cap = fp__ring_cap(seg->nslots);
  seg->ents = (_Atomic uint32_t *)(void *)(seg->base + seg->ring_off);
}

/*
 * A random, page-aligned address in the middle of the user address space,
 * as a hint: a stray pointer of one process is unlikely to land in the
 * segment, and the kernel picks another place if the hint is taken.
 */
static void *random_hint(size_t len) {
  uint64_t r = 0;
  if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
    r = fp__now_ns() * 0x9e3779b97f4a7c15ull;
  uint64_t lo = 0x100000000000ull, span = 0x400000000000ull; /* 16..80 TiB */
  uint64_t a = lo + (r % (span - len));
  return (void *)(uintptr_t)(a & ~(uint64_t)4095);
}

void *fp__map_guarded(size_t len, int prot, int flags, int fd) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t total = len + 2 * page;
  /* Reserve the segment plus a guard page on each side, inaccessible... */
  unsigned char *res = mmap(random_hint(total), total, PROT_NONE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (res == MAP_FAILED) return MAP_FAILED;
  /* ...then map the segment over the middle: overruns off either end of
   * it fault instead of landing in a neighbouring mapping. */
  void *map = mmap(res + page, len, prot, flags | MAP_FIXED, fd, 0);
  if (map == MAP_FAILED) {
    int err = errno;
    munmap(res, total);
    errno = err;
  }
  return map;
}

void fp__seg_dontfork(const struct fp__seg *seg) {
  /* The guard pages too: a later child gets none of the reservation. */
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t len = seg->maplen ? seg->maplen : seg->len;
  madvise(seg->base - page, len + 2 * page, MADV_DONTFORK);
}

void fp__unmap_guarded(void *map, size_t len) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  munmap((unsigned char *)map - page, len + 2 * page);
}

int fp__seg_create_anon(struct fp__seg *seg, const struct fp__geometry *g) {
  uint64_t total = fp__seg_bytes(g);
  if (total == 0) return -EINVAL;
  void *map = fp__map_guarded(total, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1);
  if (map == MAP_FAILED) return -errno;
  int r = fp__seg_layout(map, total, g, seg);
  if (r < 0) fp__unmap_guarded(map, total);
  return r;
}

void fp__seg_unmap(struct fp__seg *seg) {
  /* A zeroed seg (never mapped) owns no descriptor: fd 0 is not ours. */
  if (seg->base == NULL) return;
  fp__unmap_guarded(seg->base, seg->maplen ? seg->maplen : seg->len);
  if (seg->fd >= 0) close(seg->fd);
  memset(seg, 0, sizeof(*seg));
  seg->fd = -1;
}

int fp__seg_validate(const void *map, size_t len) {
  const struct fp__hdr *h = map;
  if (map == NULL || len < sizeof(*h)) return -EBADMSG;
  if (h->magic != FP__MAGIC) return -EBADMSG;
  if (h->version != FP__LAYOUT_VERSION || h->hdr_bytes != sizeof(*h))
    return -EPROTO;
  struct fp__geometry g = {h->nslots, h->nrows, h->nclients, h->max_input,
                           h->max_output};
  uint64_t ring_off, rows_off, clients_off, slots_off, total;
  uint32_t stride;
  if (fp__seg_bytes(&g) == 0) return -EBADMSG;
  layout(&g, &ring_off, &rows_off, &clients_off, &slots_off, &stride, &total);
  /* Every offset must be the one this code computes: nothing is trusted. */
  if (h->seg_bytes != total || total > len || h->ring_off != ring_off ||
      h->rows_off != rows_off || h->clients_off != clients_off ||
      h->slots_off != slots_off || h->slot_stride != stride)
    return -EBADMSG;
  return 0;
}

static _Atomic int sealed;

int fp__seal(const struct fp__seg *s, int on) {
  size_t len = s->maplen ? s->maplen : s->len;
  atomic_store(&sealed, on);
  return mprotect(s->base, len, on ? PROT_NONE : PROT_READ | PROT_WRITE) == 0
             ? 0
             : -errno;
}

int fp__sealed(void) {
  /* Async-signal-safe: the fault handler reopens the segment to report. */
  return atomic_load(&sealed);
}
