/*
 * forkpool stat: one look at a named pool, through a read-only monitor
 * handle (FP_OPEN_MONITOR takes no producer row, so it never counts as a
 * client and never holds a task).
 *
 * Plain output is "key  value" lines, then a table of the scoreboard rows
 * of the configured workers and of any other row that has a process or
 * ever restarted. --json prints one object:
 *   {"name":"jobs","state":"running","supervisor":1234,"uptime_s":12.345,
 *    "workers":2,"alive":2,"queued":0,"slots":256,"running":1,
 *    "clients":1,"submitted":10,"ok":7,"failed":0,"crashed":2,
 *    "timeout":1,"cancelled":0,"restarts":3,"abandoned":0,"repairs":0,
 *    "retried":0,"quarantined":0,"corrupt":0,"max_input":65536,
 *    "max_output":65536,"timeout_ms":0,
 *    "workers_rows":[{"row":0,"pid":1235,"state":"busy","task":17,
 *                     "running_ms":12.345,"done":5,"restarts":1}, ...]}
 * --prometheus prints the Prometheus text format instead (prom.c).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tool/args.h"
#include "attach.h"
#include "cli.h"
#include "json.h"
#include "output.h"
#include "prom.h"

#define CMD "forkpool stat"

void cli_stat_usage(int to_stderr) {
  fprintf(
      to_stderr ? stderr : stdout,
      "Usage: forkpool stat --name NAME [--json | --prometheus]\n"
      "\n"
      "Show the state of the pool NAME that 'forkpool serve' runs: its\n"
      "supervisor, workers, queue, producers attached, counters, and one row\n"
      "per worker (pid, state, current task, tasks done, restarts).\n"
      "\n"
      "  --name NAME        the pool\n"
      "  --json             one JSON object instead of text\n"
      "  --prometheus       the counters, gauges and task-duration histogram "
      "in\n"
      "                     the Prometheus text format (metrics forkpool_*,\n"
      "                     label pool=\"NAME\"), e.g. for node_exporter's\n"
      "                     textfile collector\n"
      "  -h, --help         show this help\n"
      "\n"
      "Exit status: 0 shown, 2 usage error, 3 no pool NAME runs or it cannot "
      "be\n"
      "attached to.\n");
}

static unsigned long long ull(uint64_t v) { return (unsigned long long)v; }

/* A scoreboard row is shown when it is one of the configured workers
 * (a row waiting out a restart backoff has no pid), has a process, or had
 * one. */
static int row_shown(const fp_stats *st, unsigned r, const fp_worker_info *wi) {
  return r < st->workers || wi->pid > 0 || wi->restarts > 0;
}

static void print_text(struct cli_out *o, const char *name, fp_pool *p,
                       const fp_stats *st) {
  fp_worker_info wi;
  unsigned r;
  int header = 0;

  cli_out_printf(o, "pool        %s (/dev/shm/forkpool.%s)\n", name, name);
  cli_out_printf(o, "state       %s\n", fp_pool_state_name(st->state));
  if (st->supervisor > 0)
    cli_out_printf(o, "supervisor  pid %ld, up %llu.%03llu s\n",
                   (long)st->supervisor, ull(st->uptime_us / 1000000u),
                   ull(st->uptime_us / 1000u % 1000u));
  else cli_out_puts(o, "supervisor  gone\n");
  cli_out_printf(o, "workers     %u target, %u alive", st->workers, st->alive);
  if (st->max_workers)
    cli_out_printf(o, ", resizing %u..%u", st->min_workers, st->max_workers);
  if (st->last_resize_us)
    cli_out_printf(o, ", last resize %llu.%03llu s ago",
                   ull(st->last_resize_us / 1000000u),
                   ull(st->last_resize_us / 1000u % 1000u));
  cli_out_puts(o, "\n");
  cli_out_printf(o, "queue       %u queued of %u slots, %u running\n",
                 st->queued, st->slots, st->running);
  cli_out_printf(o, "clients     %u\n", st->clients);
  cli_out_printf(o,
                 "tasks       %llu submitted: %llu ok, %llu failed, "
                 "%llu crashed, %llu timeout, %llu cancelled\n",
                 ull(st->submitted), ull(st->ok), ull(st->failed),
                 ull(st->crashed), ull(st->timeout), ull(st->cancelled));
  cli_out_printf(o, "retries     %llu runs repeated, %llu tasks quarantined\n",
                 ull(st->retried), ull(st->quarantined));
  cli_out_printf(o, "restarts    %llu\n", ull(st->restarts));
  cli_out_printf(o, "abandoned   %llu\n", ull(st->abandoned));
  cli_out_printf(o, "corrupt     %llu slots, %llu queue repairs\n",
                 ull(st->corrupt), ull(st->repairs));
  cli_out_printf(o, "limits      input %zu bytes, output %zu bytes, ",
                 st->max_input, st->max_output);
  if (st->timeout_ms) cli_out_printf(o, "timeout %u ms\n", st->timeout_ms);
  else cli_out_puts(o, "no timeout\n");
  for (r = 0; r < st->rows; r++) {
    if (fp_pool_worker(p, r, &wi) < 0 || !row_shown(st, r, &wi)) continue;
    if (!header) {
      cli_out_printf(o, "\n%-5s %-8s %-8s %-10s %-12s %-8s %s\n", "row", "pid",
                     "state", "task", "running_ms", "done", "restarts");
      header = 1;
    }
    cli_out_printf(o, "%-5u %-8ld %-8s ", r, (long)wi.pid,
                   fp_worker_state_name(wi.state));
    if (wi.task_id)
      cli_out_printf(o, "%-10llu %-12.3f ", ull(wi.task_id),
                     (double)wi.running_us / 1000.0);
    else cli_out_printf(o, "%-10s %-12s ", "-", "-");
    cli_out_printf(o, "%-8llu %u\n", ull(wi.done), wi.restarts);
  }
}

static void print_json(struct cli_out *o, const char *name, fp_pool *p,
                       const fp_stats *st) {
  fp_worker_info wi;
  unsigned r;
  int first = 1;

  cli_out_puts(o, "{\"name\":");
  cli_json_string(o, name);
  cli_out_puts(o, ",\"state\":");
  cli_json_string(o, fp_pool_state_name(st->state));
  cli_out_printf(o, ",\"supervisor\":%ld,\"uptime_s\":%.3f",
                 (long)st->supervisor, (double)st->uptime_us / 1e6);
  cli_out_printf(o,
                 ",\"workers\":%u,\"alive\":%u,\"queued\":%u,"
                 "\"slots\":%u,\"running\":%u,\"clients\":%u",
                 st->workers, st->alive, st->queued, st->slots, st->running,
                 st->clients);
  cli_out_printf(o,
                 ",\"min_workers\":%u,\"max_workers\":%u,"
                 "\"last_resize_s\":%.3f",
                 st->min_workers, st->max_workers,
                 (double)st->last_resize_us / 1e6);
  cli_out_printf(o,
                 ",\"submitted\":%llu,\"ok\":%llu,\"failed\":%llu,"
                 "\"crashed\":%llu,\"timeout\":%llu,\"cancelled\":%llu",
                 ull(st->submitted), ull(st->ok), ull(st->failed),
                 ull(st->crashed), ull(st->timeout), ull(st->cancelled));
  cli_out_printf(o, ",\"restarts\":%llu,\"abandoned\":%llu,\"repairs\":%llu",
                 ull(st->restarts), ull(st->abandoned), ull(st->repairs));
  cli_out_printf(o, ",\"retried\":%llu,\"quarantined\":%llu,\"corrupt\":%llu",
                 ull(st->retried), ull(st->quarantined), ull(st->corrupt));
  cli_out_printf(o, ",\"max_input\":%zu,\"max_output\":%zu,\"timeout_ms\":%u",
                 st->max_input, st->max_output, st->timeout_ms);
  cli_out_puts(o, ",\"workers_rows\":[");
  for (r = 0; r < st->rows; r++) {
    if (fp_pool_worker(p, r, &wi) < 0 || !row_shown(st, r, &wi)) continue;
    cli_out_printf(o, "%s{\"row\":%u,\"pid\":%ld,\"state\":", first ? "" : ",",
                   r, (long)wi.pid);
    cli_json_string(o, fp_worker_state_name(wi.state));
    cli_out_printf(o,
                   ",\"task\":%llu,\"running_ms\":%.3f,\"done\":%llu,"
                   "\"restarts\":%u}",
                   ull(wi.task_id), (double)wi.running_us / 1000.0,
                   ull(wi.done), wi.restarts);
    first = 0;
  }
  cli_out_puts(o, "]}\n");
}

/* The Prometheus exposition: the gauges the scoreboard gives, then
 * prom.c. */
static void print_prometheus(struct cli_out *o, const char *name, fp_pool *p,
                             const fp_stats *st) {
  struct cli_prom_pool pp;
  fp_worker_info wi;
  unsigned r;

  memset(&pp, 0, sizeof pp);
  pp.name = name;
  pp.st = st;
  for (r = 0; r < st->rows; r++) {
    if (fp_pool_worker(p, r, &wi) < 0 || wi.pid <= 0) continue;
    pp.busy += wi.state == FP_WORKER_BUSY;
    pp.idle += wi.state == FP_WORKER_IDLE;
  }
  cli_prom_hist_from_stats(&pp.dur, st);
  cli_prom_write(o, &pp);
}

int cli_stat_main(int argc, char **argv) {
  const char *name = NULL;
  struct cli_out out;
  fp_pool *p = NULL;
  fp_stats st;
  int i, r, json = 0, prom = 0, rc;

  for (i = 1; i < argc; i++) {
    const char *a = argv[i];

    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      cli_stat_usage(0);
      return CLI_EXIT_OK;
    }
    if ((r = tool_arg_flag(CMD, argv, i, "--json")) != 0) {
      if (r < 0) goto usage;
      json = 1;
      continue;
    }
    if ((r = tool_arg_flag(CMD, argv, i, "--prometheus")) != 0) {
      if (r < 0) goto usage;
      prom = 1;
      continue;
    }
    if ((r = tool_arg_value(CMD, argc, argv, &i, "--name", &name)) != 0) {
      if (r < 0) goto usage;
      continue;
    }
    tool_arg_reject(CMD, a);
    goto usage;
  }
  if (!name) {
    fprintf(stderr, CMD ": --name is required\n");
    goto usage;
  }
  if (json && prom) {
    fprintf(stderr, CMD ": --json and --prometheus exclude each other\n");
    goto usage;
  }
  if (cli_name_check(CMD, name) < 0) goto usage;
  rc = cli_attach(CMD, name, FP_OPEN_MONITOR, &p);
  if (rc != 0) return rc;
  if (cli_out_init(&out, STDOUT_FILENO, 64u * 1024u) < 0) {
    fprintf(stderr, CMD ": out of memory\n");
    fp_pool_free(p);
    return CLI_EXIT_FAIL;
  }
  rc = CLI_EXIT_OK;
  if (fp_pool_stats(p, &st) < 0) {
    fprintf(stderr, CMD ": cannot read the pool's counters\n");
    rc = CLI_EXIT_FAIL;
  } else if (json) {
    print_json(&out, name, p, &st);
  } else if (prom) {
    print_prometheus(&out, name, p, &st);
  } else {
    print_text(&out, name, p, &st);
  }
  if (cli_out_flush(&out) < 0) rc = CLI_EXIT_FAIL;
  cli_out_free(&out);
  fp_pool_free(p);
  return rc;

usage:
  fprintf(stderr, "Try 'forkpool stat --help'.\n");
  return CLI_EXIT_USAGE;
}
