/*
 * The reorder window of `forkpool run` and `forkpool submit`: tasks in
 * input order, from the oldest not yet printed (the head) to the newest
 * submitted.
 *
 * Results come back from fp_collect() in completion order; the window
 * holds each one in its input position until everything before it has been
 * printed. Its capacity bounds how far completion may run ahead of the
 * head, and so the memory held by finished results. A map from task id to
 * position finds a collected result's place in O(1).
 */
#ifndef FORKPOOL_CLI_REORDER_H
#define FORKPOOL_CLI_REORDER_H

#include <stddef.h>
#include <stdint.h>

#include "forkpool.h"
#include "tool/hmap.h"

enum cli_entry_state {
  CLI_ENTRY_RUNNING = 0, /* submitted, result not collected yet */
  CLI_ENTRY_DONE,        /* res holds the result */
  CLI_ENTRY_OVERSIZE,    /* never submitted: input over --max-input */
  CLI_ENTRY_EXPIRED      /* submitted, but we stopped waiting for it */
};

struct cli_entry {
  enum cli_entry_state state;
  uint64_t id;        /* CLI_ENTRY_RUNNING: the task id */
  uint64_t input_len; /* CLI_ENTRY_OVERSIZE: the record's length */
  uint64_t t_ns;      /* when it was pushed (CLOCK_MONOTONIC), if set */
  fp_result res;      /* CLI_ENTRY_DONE; its buffer is reused */
};

struct cli_window {
  struct cli_entry *e; /* ring of cap entries; seq s lives at s % cap */
  size_t cap;
  uint64_t head;        /* seq of the oldest entry */
  size_t count;         /* entries in the window */
  size_t running;       /* of which CLI_ENTRY_RUNNING */
  struct tool_hmap map; /* running task id -> index in e */
};

/* Set up an empty window of cap (>= 1) entries. Returns 0 or -ENOMEM. */
int cli_window_init(struct cli_window *w, size_t cap);

/* Release the window and every result buffer in it. */
void cli_window_free(struct cli_window *w);

static inline int cli_window_full(const struct cli_window *w) {
  return w->count == w->cap;
}

/* Append a submitted task (window not full). Returns its seq. */
uint64_t cli_window_push_task(struct cli_window *w, uint64_t id);

/* Append a record that was not submitted (window not full). Returns seq. */
uint64_t cli_window_push_oversize(struct cli_window *w, uint64_t input_len);

/*
 * Store a collected result in its task's entry. The result is swapped with
 * the entry's spare fp_result, so *res comes back holding an older output
 * buffer for the next fp_collect() to reuse: no copy, no allocation in the
 * steady state. Returns 0, or -ENOENT when res->id is not a running task of
 * this window (nothing changed).
 */
int cli_window_complete(struct cli_window *w, fp_result *res);

/* The head entry, finished or not, or NULL when the window is empty. */
static inline struct cli_entry *cli_window_head(struct cli_window *w) {
  return w->count ? &w->e[w->head % w->cap] : NULL;
}

/* The entry at position seq (head <= seq < head + count). */
static inline struct cli_entry *cli_window_at(struct cli_window *w,
                                              uint64_t seq) {
  return &w->e[seq % w->cap];
}

/*
 * Stop waiting for the head task (it must be CLI_ENTRY_RUNNING): it becomes
 * CLI_ENTRY_EXPIRED, a finished entry, and its id leaves the map, so its
 * result, should it still come, is unknown to cli_window_complete().
 */
void cli_window_expire_head(struct cli_window *w);

/* The head entry when it is finished (done, oversize or expired), else
 * NULL. */
struct cli_entry *cli_window_ready_head(struct cli_window *w);

/* Drop the head entry (after printing it). Returns its seq. */
uint64_t cli_window_pop(struct cli_window *w);

#endif /* FORKPOOL_CLI_REORDER_H */
