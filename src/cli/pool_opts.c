/*
 * The options shared by run and serve. See pool_opts.h.
 */
#include <stdio.h>

#include "pool_opts.h"

void cli_pool_num_init(struct tool_num_opt *num) {
  static const struct tool_num_opt table[CLI_POOL_NOPT] = {
      [CLI_POOL_WORKERS] = {"--workers", 1, FP_MAX_WORKERS, 0, 0},
      [CLI_POOL_QUEUE] = {"--queue", 1, FP_MAX_SLOTS, 256, 0},
      [CLI_POOL_MAX_INPUT] = {"--max-input", 1, FP_MAX_IO_BYTES, 65536, 0},
      [CLI_POOL_MAX_OUTPUT] = {"--max-output", 1, FP_MAX_IO_BYTES, 65536, 0},
      [CLI_POOL_TIMEOUT] = {"--timeout", 0, 2147483647u, 0, 0},
      [CLI_POOL_MAX_TASKS] = {"--max-tasks", 0, 4294967295u, 0, 0},
      [CLI_POOL_MAX_ATTEMPTS] = {"--max-attempts", 1, 100, 1, 0},
      [CLI_POOL_MAX_MEMORY] = {"--max-memory", 0, 1048576, 0, 0},
      [CLI_POOL_MAX_RSS] = {"--max-rss", 0, 1048576, 0, 0},
  };

  for (int k = 0; k < CLI_POOL_NOPT; k++) num[k] = table[k];
  num[CLI_POOL_WORKERS].value = tool_online_cpus();
}

void cli_pool_num_get(const struct tool_num_opt *num, struct cli_pool_opts *o) {
  /* Each range above fits the destination type. */
  o->workers = (unsigned)num[CLI_POOL_WORKERS].value;
  o->slots = (unsigned)num[CLI_POOL_QUEUE].value;
  o->max_input = (size_t)num[CLI_POOL_MAX_INPUT].value;
  o->max_output = (size_t)num[CLI_POOL_MAX_OUTPUT].value;
  o->timeout_ms = (unsigned)num[CLI_POOL_TIMEOUT].value;
  o->max_tasks = (unsigned)num[CLI_POOL_MAX_TASKS].value;
  o->max_attempts = (unsigned)num[CLI_POOL_MAX_ATTEMPTS].value;
  o->max_memory_mb = (unsigned)num[CLI_POOL_MAX_MEMORY].value;
  o->max_rss_mb = (unsigned)num[CLI_POOL_MAX_RSS].value;
}

void cli_pool_config(const struct cli_pool_opts *o, fp_config *cfg) {
  cfg->workers = o->workers;
  cfg->slots = o->slots;
  cfg->max_input = o->max_input;
  cfg->max_output = o->max_output;
  cfg->timeout_ms = o->timeout_ms;
  cfg->max_tasks = o->max_tasks;
  cfg->max_attempts = o->max_attempts;
  cfg->max_memory_mb = o->max_memory_mb;
  cfg->max_rss_mb = o->max_rss_mb;
}

int cli_pool_validate(const char *cmd, const fp_config *cfg) {
  int r = fp_config_validate(cfg);

  if (r < 0)
    fprintf(stderr,
            "%s: invalid configuration (is --queue x (--max-input + "
            "--max-output) too large?): %s\n",
            cmd, fp_strerror(r));
  return r;
}
