/*
 * The sealed room around user code in a worker (room.c), and the calls a
 * handler makes (task_api.c). Worker-side only.
 */
#ifndef FP_ROOM_H
#define FP_ROOM_H

#include <stddef.h>
#include <stdint.h>

#include "segment.h"

/*
 * No kernel creates a process in less than this: clone() copies or shares
 * the mm, allocates a task, a pid and signal state and wakes the child
 * before it returns, thousands of instructions and several allocations.
 * Measured on the development VM: fork 39 us, vfork 16 us, a bare
 * clone(CLONE_VM) 11 us at best; a fast bare-metal CPU does it in a few us.
 * A handler that returned sooner than this since its task started forked
 * nothing, so the check below (a system call, ~0.4 us, a third of a
 * trivial task's cost) is skipped for it.
 */
#define FP__MIN_SPAWN_NS 1000u

/*
 * Before the first task: purge the host's stdio bytes, map the segment
 * MADV_DONTFORK, make stdout line-buffered, hook exit() and fork() in user
 * code, reset every signal and catch SIGURG (output written). Returns 0 or
 * -ENOMEM (a hook could not be registered: the worker must exit).
 */
FP__HIDDEN int fp__room_enter(const struct fp__seg *s);

/* Right after user code returned (the handler), before the segment is
 * touched again: a fork() child of the handler _exits here (127); the
 * worker waits (200 ms at most) until the supervisor read what it wrote to
 * fd 1 and 2. Returns only in the worker itself. */
FP__HIDDEN void fp__room_after_user_code(void);

/* 1 in a process the handler fork()ed (an atfork hook set it), else 0. */
FP__HIDDEN int fp__room_in_child(void);

/* After worker_init: note its children, which live on (they are not a
 * task's). Cannot fail (without memory for the list, they are ended with
 * the first task). */
FP__HIDDEN void fp__room_note_init_kids(void);

/* 1 when worker_init left children (fp__room_note_init_kids). */
FP__HIDDEN int fp__room_has_init_kids(void);

/*
 * After the handler returned, ran_ns after its task started: SIGKILL and
 * reap every process the task started (worker_init's excepted). Returns 0
 * when none is left, or -ETIMEDOUT / -errno when some may be (the worker
 * then exits after publishing, leaving them to the supervisor).
 */
FP__HIDDEN int fp__room_end_descendants(uint64_t ran_ns);

/* --max-rss: this worker's resident set in KiB when above mb MiB, else 0
 * (cheap: measures only when it could have grown that much). */
FP__HIDDEN uint32_t fp__room_rss_over(unsigned mb);

/* --max-memory: RLIMIT_AS at the current size plus mb MiB (0: none).
 * Returns 0 or -errno. */
FP__HIDDEN int fp__room_limit_memory(unsigned mb);

/* task_api.c: the row the handler's calls act on (before any task). */
FP__HIDDEN void fp__task_api_init(struct fp__row *row);

/* Around each call of the handler: fp_spawn works between the two, and
 * fp__spawn_end hands back the records it kept (4-byte length, bytes; the
 * buffer stays ours until the next begin) and their total size. */
FP__HIDDEN void fp__spawn_begin(uint32_t max_input);
FP__HIDDEN size_t fp__spawn_end(const unsigned char **buf);

#endif /* FP_ROOM_H */
