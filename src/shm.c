/*
 * Named segments and OFD liveness locks. See shm.h.
 */
#include "shm.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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
  struct flock fl = {
      .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = off, .l_len = 1};
  int r = ofd_op(fd, F_OFD_SETLK, &fl);
  return r == -EACCES ? -EAGAIN : r;
}

int fp__ofd_held(int fd, off_t off) {
  struct flock fl = {
      .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = off, .l_len = 1};
  int r = ofd_op(fd, F_OFD_GETLK, &fl);
  if (r < 0) return r;
  return fl.l_type != F_UNLCK;
}

/*
 * An object already exists under path: if it is another user's, refuse
 * (-EACCES); if its supervisor lives, refuse (-EADDRINUSE); else take its
 * lock (so no racing supervisor uses it) and unlink it. Returns 0 when the
 * name is free, or the negative errno (a symbolic link: -ELOOP).
 */
static int remove_stale(const char *path) {
  int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return errno == ENOENT ? 0 : -errno;
  /* Another user's object is never ours to replace, live or not (root
   * could open and remove it: it must not). */
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  if (st.st_uid != geteuid()) {
    close(fd);
    return -EACCES;
  }
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
  /*
   * Reserve every page now (tmpfs allocates them): a /dev/shm too small,
   * or filled later by anyone, must be -ENOSPC here, never a SIGBUS in the
   * supervisor, a worker or a producer when a page is first touched.
   * posix_fallocate returns its error instead of setting errno.
   */
  do err = posix_fallocate(fd, 0, (off_t)total);
  while (err == EINTR);
  if (err != 0) {
    err = -err;
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

/*
 * May this process attach to the segment file described by st? Its owner
 * may; so may a member of its group when the mode gives the group read and
 * write (producer) or read (writable 0: monitor). Nobody else, whatever
 * the "other" bits say. Returns 0 or -EACCES.
 */
static int may_attach(const struct stat *st, int writable) {
  if (st->st_uid == geteuid()) return 0;
  unsigned need = writable ? 060u : 040u;
  if (((unsigned)st->st_mode & need) != need) return -EACCES;
  if (st->st_gid == getegid()) return 0;
  int n = getgroups(0, NULL);
  if (n <= 0) return -EACCES;
  gid_t *g = malloc((size_t)n * sizeof(*g));
  if (g == NULL) return -ENOMEM;
  n = getgroups(n, g);
  int found = 0;
  for (int k = 0; k < n && !found; k++) found = g[k] == st->st_gid;
  free(g);
  return found ? 0 : -EACCES;
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
  if ((err = may_attach(&st, writable)) < 0) goto err;
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
  /* The file's owner must be the creator the header names: a group
   * member cannot pass a file of its own off as another user's pool. */
  if (((struct fp__hdr *)map)->uid != (uint32_t)st.st_uid) {
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
