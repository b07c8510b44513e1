/*
 * The Prometheus text format: see prom.h. Metric and label names are fixed
 * here; the one label value that comes from outside, the pool name, is
 * escaped as the format says (backslash, double quote, newline), although
 * a valid pool name never needs it. Numbers are written as integers, and
 * seconds from microseconds with exact decimal digits, so no value depends
 * on float formatting.
 */
#include <stdio.h>
#include <string.h>

#include "prom.h"

enum kind { COUNTER, GAUGE };

static const char *const kind_names[] = {"counter", "gauge"};

/* `{pool="NAME"` without the closing brace, so callers can add labels. */
static void labels_open(struct cli_out *o, const char *name) {
  const char *c;

  cli_out_puts(o, "{pool=\"");
  for (c = name; *c; c++) {
    if (*c == '\\' || *c == '"') cli_out_putc(o, '\\');
    if (*c == '\n') cli_out_puts(o, "\\n");
    else cli_out_putc(o, *c);
  }
  cli_out_putc(o, '"');
}

static void header(struct cli_out *o, const char *metric, const char *type,
                   const char *help) {
  cli_out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", metric, help, metric, type);
}

/* One metric with one sample. */
static void metric(struct cli_out *o, const struct cli_prom_pool *p,
                   enum kind k, const char *name, const char *help,
                   uint64_t v) {
  header(o, name, kind_names[k], help);
  cli_out_puts(o, name);
  labels_open(o, p->name);
  cli_out_printf(o, "} %llu\n", (unsigned long long)v);
}

/* Microseconds as seconds: "0.0001", "1", "12.5". */
static void put_seconds(struct cli_out *o, uint64_t us) {
  char frac[8];
  int n;

  cli_out_printf(o, "%llu", (unsigned long long)(us / 1000000u));
  if (us % 1000000u == 0) return;
  n = snprintf(frac, sizeof frac, "%06llu",
               (unsigned long long)(us % 1000000u));
  while (n > 0 && frac[n - 1] == '0') n--;
  cli_out_putc(o, '.');
  cli_out_write(o, frac, (size_t)n);
}

static void histogram(struct cli_out *o, const struct cli_prom_pool *p,
                      const char *name, const char *help,
                      const struct cli_prom_hist *h) {
  unsigned k;

  header(o, name, "histogram", help);
  for (k = 0; k < h->n; k++) {
    cli_out_printf(o, "%s_bucket", name);
    labels_open(o, p->name);
    cli_out_puts(o, ",le=\"");
    if (h->le_us[k] == UINT64_MAX) cli_out_puts(o, "+Inf");
    else put_seconds(o, h->le_us[k]);
    cli_out_printf(o, "\"} %llu\n", (unsigned long long)h->count_le[k]);
  }
  cli_out_printf(o, "%s_sum", name);
  labels_open(o, p->name);
  cli_out_puts(o, "} ");
  put_seconds(o, h->sum_us);
  cli_out_printf(o, "\n%s_count", name);
  labels_open(o, p->name);
  cli_out_printf(o, "} %llu\n", (unsigned long long)h->count);
}

void cli_prom_hist_from_stats(struct cli_prom_hist *h, const fp_stats *st) {
  static const uint64_t bounds[FP_DURATION_BUCKETS] = FP_DURATION_BOUNDS_US;
  unsigned k, n = FP_DURATION_BUCKETS;

  memset(h, 0, sizeof *h);
  if (n > CLI_PROM_MAX_BUCKETS - 1) n = CLI_PROM_MAX_BUCKETS - 1;
  for (k = 0; k < n; k++) {
    h->le_us[k] = bounds[k];
    h->count_le[k] = st->duration_le[k];
  }
  h->count = st->duration_count;
  h->sum_us = st->duration_sum_us;
  if (n == 0 || h->le_us[n - 1] != UINT64_MAX) {
    h->le_us[n] = UINT64_MAX;
    h->count_le[n] = h->count;
    n++;
  }
  h->n = n;
}

/* The finished-task counter: one metric, one sample per status. */
static void finished(struct cli_out *o, const struct cli_prom_pool *p) {
  const fp_stats *st = p->st;
  const struct {
    const char *status;
    uint64_t v;
  } s[] = {
      {"ok", st->ok},
      {"failed", st->failed},
      {"crashed", st->crashed},
      {"timeout", st->timeout},
      {"cancelled", st->cancelled},
  };
  const char *name = "forkpool_tasks_finished_total";
  size_t k;

  header(o, name, "counter",
         "Tasks that ended, by status (a corrupt one "
         "counts as failed).");
  for (k = 0; k < sizeof s / sizeof s[0]; k++) {
    cli_out_puts(o, name);
    labels_open(o, p->name);
    cli_out_printf(o, ",status=\"%s\"} %llu\n", s[k].status,
                   (unsigned long long)s[k].v);
  }
}

void cli_prom_write(struct cli_out *o, const struct cli_prom_pool *p) {
  const fp_stats *st = p->st;

  metric(o, p, GAUGE, "forkpool_up",
         "1 while the pool's supervisor is "
         "alive, 0 once it is gone.",
         st->supervisor > 0);
  header(o, "forkpool_uptime_seconds", "gauge",
         "Seconds since the supervisor started.");
  cli_out_puts(o, "forkpool_uptime_seconds");
  labels_open(o, p->name);
  cli_out_puts(o, "} ");
  put_seconds(o, st->uptime_us);
  cli_out_putc(o, '\n');
  metric(o, p, COUNTER, "forkpool_tasks_submitted_total",
         "Tasks submitted to the pool.", st->submitted);
  finished(o, p);
  metric(o, p, COUNTER, "forkpool_task_retries_total",
         "Task runs repeated "
         "after a crash or timeout (max_attempts).",
         st->retried);
  metric(o, p, COUNTER, "forkpool_tasks_quarantined_total",
         "Tasks that "
         "used up max_attempts (poison).",
         st->quarantined);
  metric(o, p, COUNTER, "forkpool_worker_restarts_total",
         "Workers forked "
         "to replace one that exited.",
         st->restarts);
  metric(o, p, COUNTER, "forkpool_results_abandoned_total",
         "Results nobody "
         "collected because their producer went away.",
         st->abandoned);
  metric(o, p, COUNTER, "forkpool_corrupt_slots_total",
         "Damaged task slots "
         "found in shared memory.",
         st->corrupt);
  metric(o, p, COUNTER, "forkpool_queue_repairs_total",
         "Times the queue "
         "was rebuilt after a process died holding it.",
         st->repairs);
  metric(o, p, GAUGE, "forkpool_queue_depth", "Tasks waiting for a worker.",
         st->queued);
  metric(o, p, GAUGE, "forkpool_queue_slots",
         "Task slots in the queue "
         "(its capacity).",
         st->slots);
  metric(o, p, GAUGE, "forkpool_workers_configured",
         "Worker processes "
         "the pool is configured for.",
         st->workers);
  metric(o, p, GAUGE, "forkpool_workers_alive", "Worker processes alive.",
         st->alive);
  metric(o, p, GAUGE, "forkpool_workers_busy", "Workers running a task.",
         p->busy);
  metric(o, p, GAUGE, "forkpool_workers_idle",
         "Workers waiting for a "
         "task.",
         p->idle);
  metric(o, p, GAUGE, "forkpool_clients_attached",
         "Producer processes "
         "attached.",
         st->clients);
  metric(o, p, GAUGE, "forkpool_segment_bytes",
         "Size of the pool's "
         "shared-memory segment.",
         st->segment_bytes);
  if (p->dur.n > 0)
    histogram(o, p, "forkpool_task_duration_seconds",
              "Run time of task "
              "runs: every attempt of a retried task counts, cancelled runs "
              "do not.",
              &p->dur);
}
