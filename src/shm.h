/*
 * Named segments: POSIX shared-memory objects "/forkpool.NAME", and the OFD
 * (open file description) locks on bytes of them that tell who is alive.
 *
 * OFD locks belong to one open of the file, are released by the kernel when
 * the last descriptor of that open is closed (process death included, by
 * SIGKILL too), are not shared with an independent open of the same file,
 * and do not depend on pids, so pid reuse cannot fake a live peer.
 */
#ifndef FP_SHM_H
#define FP_SHM_H

#include <sys/types.h>

#include "segment.h"

/* "/forkpool.NAME" into buf (>= FP_NAME_MAX + 16 bytes). 0 or -EINVAL. */
FP__HIDDEN int fp__shm_path(const char *name, char *buf, size_t size);

/*
 * Take the write lock on byte `off` without waiting. 0, -EAGAIN when another
 * open holds it, or -errno.
 */
FP__HIDDEN int fp__ofd_lock(int fd, off_t off);

/* 1 when another open holds a lock on byte `off`, 0 when none, -errno. */
FP__HIDDEN int fp__ofd_held(int fd, off_t off);

/*
 * Create the named segment for a new supervisor and take its liveness lock
 * (byte FP__SUP_LOCK_BYTE) before anything else can see it; lay it out.
 * An existing object whose lock nobody holds (left by a dead supervisor) is
 * removed and replaced. Every page of the segment is allocated here
 * (posix_fallocate), so no later access can fault for want of memory in
 * /dev/shm. Returns 0 and fills *seg (seg->fd set), or -EADDRINUSE (live
 * supervisor; nothing changed), -EACCES, -ENOSPC (/dev/shm has no room for
 * fp__seg_bytes(g) bytes), -errno, with nothing created.
 */
FP__HIDDEN int fp__shm_create(struct fp__seg *seg, const char *name,
                              unsigned mode, const struct fp__geometry *g);

/*
 * Open and map an existing named segment, validated. `writable` 0 maps it
 * read-only. Allowed for the file's owner, and for members of the file's
 * group when its mode gives the group rw (writable) or r (read-only); in
 * both cases the owner must be the creator uid the header records.
 * Returns 0 and fills *seg, or -ENOENT, -EACCES, -ELOOP (a symbolic link),
 * -EBADMSG, -EPROTO, -ECONNREFUSED (no live supervisor), -errno; nothing
 * left mapped.
 */
FP__HIDDEN int fp__shm_open(struct fp__seg *seg, const char *name,
                            int writable);

#endif /* FP_SHM_H */
