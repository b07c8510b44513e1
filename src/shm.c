/*
 * Named segments and OFD liveness locks. See shm.h.
 */
#include "shm.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

FP_EXTERN int fp_name_validate(const char *name) {
  if (name == NULL || name[0] == '\0' || name[0] == '-') return -EINVAL;
  size_t n = 0;
  for (const char *c = name; *c; c++, n++) {
    int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
             (*c >= '0' && *c <= '9') || *c == '_' || *c == '-';
    if (!ok || n >= FP_NAME_MAX) return -EINVAL;
  }
  return 0;
}

int fp__shm_path(const char *name, char *buf, size_t size) {
  if (fp_name_validate(name) < 0) return -EINVAL;
  int n = snprintf(buf, size, "/forkpool.%s", name);
  return n < 0 || (size_t)n >= size ? -EINVAL : 0;
}

static int ofd_op(int fd, int cmd, struct flock *fl) {
  int r;
  do r = fcntl(fd, cmd, fl);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

int fp__ofd_lock(int fd, off_t off) {
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = off,
                     .l_len = 1};
  int r = ofd_op(fd, F_OFD_SETLK, &fl);
  return r == -EACCES ? -EAGAIN : r;
}

int fp__ofd_held(int fd, off_t off) {
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = off,
                     .l_len = 1};
  int r = ofd_op(fd, F_OFD_GETLK, &fl);
  if (r < 0) return r;
  return fl.l_type != F_UNLCK;
}

/*
 * An object already exists under path: if its supervisor lives, refuse;
 * else take its lock (so no racing supervisor uses it) and unlink it.
 */
static int remove_stale(const char *path) {
  int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return errno == ENOENT ? 0 : -errno;
  int r = fp__ofd_lock(fd, FP__SUP_LOCK_BYTE);
  if (r == 0) {
    /* Ours now, and dead: nobody can serve it again. */
    if (shm_unlink(path) != 0 && errno != ENOENT) r = -errno;
  } else if (r == -EAGAIN) {
    r = -EADDRINUSE;
  }
  close(fd);
  return r;
}

int fp__shm_create(struct fp__seg *seg, const char *name, unsigned mode,
                   const struct fp__geometry *g) {
  char path[FP_NAME_MAX + 16];
  uint64_t total = fp__seg_bytes(g);
  if (fp__shm_path(name, path, sizeof(path)) < 0 || total == 0 ||
      (mode & ~0777u) != 0)
    return -EINVAL;
  int fd = -1, err;
  for (int attempt = 0; attempt < 3; attempt++) {
    fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd >= 0 || errno != EEXIST) break;
    if ((err = remove_stale(path)) < 0) return err;
  }
  if (fd < 0) return errno == EEXIST ? -EADDRINUSE : -errno;
  /* Lock before the object has a size: attachers see "no supervisor" or a
   * live one, never a dead half-made segment. */
  void *map = MAP_FAILED;
  if ((err = fp__ofd_lock(fd, FP__SUP_LOCK_BYTE)) < 0) goto err;
  /* The umask may have narrowed the mode we were asked for. */
  if (fchmod(fd, mode) != 0 || ftruncate(fd, (off_t)total) != 0) {
    err = -errno;
    goto err;
  }
  map = fp__map_guarded(total, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
  if (map == MAP_FAILED) {
    err = -errno;
    goto err;
  }
  if ((err = fp__seg_layout(map, total, g, seg)) < 0) goto err;
  seg->fd = fd;
  return 0;

err:
  if (map != MAP_FAILED) fp__unmap_guarded(map, total);
  shm_unlink(path);
  close(fd);
  return err;
}

int fp__shm_open(struct fp__seg *seg, const char *name, int writable) {
  char path[FP_NAME_MAX + 16];
  if (fp__shm_path(name, path, sizeof(path)) < 0) return -EINVAL;
  int fd = shm_open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int err;
  void *map = MAP_FAILED;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    err = -errno;
    goto err;
  }
  if (st.st_uid != geteuid()) {
    err = -EACCES; /* another user's pool: never attach to it */
    goto err;
  }
  /* A supervisor that is creating it holds the lock before sizing it. */
  for (int k = 0; k < 100; k++) {
    int held = fp__ofd_held(fd, FP__SUP_LOCK_BYTE);
    if (held < 0) {
      err = held;
      goto err;
    }
    if (!held) {
      err = -ECONNREFUSED;
      goto err;
    }
    if (fstat(fd, &st) != 0) {
      err = -errno;
      goto err;
    }
    if ((size_t)st.st_size >= sizeof(struct fp__hdr)) break;
    usleep(10000);
  }
  size_t len = (size_t)st.st_size;
  if (len < sizeof(struct fp__hdr)) {
    err = -EBADMSG;
    goto err;
  }
  map = fp__map_guarded(len, PROT_READ | (writable ? PROT_WRITE : 0),
                        MAP_SHARED, fd);
  if (map == MAP_FAILED) {
    err = -errno;
    goto err;
  }
  /* The creator writes magic last; give a starting one a moment. */
  for (int k = 0; k < 100 && ((struct fp__hdr *)map)->magic == 0; k++)
    usleep(10000);
  atomic_thread_fence(memory_order_acquire);
  if ((err = fp__seg_validate(map, len)) < 0) goto err;
  if (((struct fp__hdr *)map)->uid != geteuid()) {
    err = -EACCES;
    goto err;
  }
  seg->hdr = map;
  seg->base = map;
  seg->len = ((struct fp__hdr *)map)->seg_bytes;
  seg->maplen = len;
  seg->fd = fd;
  fp__seg_bind(seg);
  return 0;

err:
  if (map != MAP_FAILED) fp__unmap_guarded(map, (size_t)st.st_size);
  close(fd);
  return err;
}
