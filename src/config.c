/*
 * Configuration defaults and validation.
 */
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "segment.h"

/* Our defaults, in a full struct of ours. */
static void defaults(fp_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->size = sizeof(*cfg);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  cfg->workers = n > 0 && n <= (long)FP_MAX_WORKERS ? (unsigned)n : 1;
  cfg->slots = 256;
  cfg->max_input = 64 * 1024;
  cfg->max_output = 64 * 1024;
}

FP_EXTERN void fp_config_init_sized(fp_config *cfg, size_t size) {
  fp_config d;
  defaults(&d);
  fp__sized_init(cfg, size, &d, sizeof(d));
}

/* The fields every layout has: up to the handler and its arg. */
#define CONFIG_MIN FP__END_OF(fp_config, arg)

int fp__config_load(const fp_config *in, fp_config *out) {
  if (in == NULL) return -EINVAL;
  /* Fields past the caller's layout take their defaults, and a field's 0
   * is its default: zeros, as fp_config_init would leave them. */
  memset(out, 0, sizeof(*out));
  int err = fp__sized_in(out, sizeof(*out), in, in->size, CONFIG_MIN);
  if (err < 0) return err;
  out->size = sizeof(*out);
  return 0;
}

FP_EXTERN int fp_config_validate(const fp_config *user) {
  fp_config full;
  int err = fp__config_load(user, &full);
  if (err < 0) return err;
  const fp_config *cfg = &full;
  if (cfg->handler == NULL || (cfg->flags & ~FP_CONFIG_SEAL) != 0)
    return -EINVAL;
  if (cfg->workers == 0 || cfg->workers > FP_MAX_WORKERS) return -EINVAL;
  if (cfg->slots == 0 || cfg->slots > FP_MAX_SLOTS) return -EINVAL;
  if (cfg->max_input == 0 || cfg->max_input > FP_MAX_IO_BYTES) return -EINVAL;
  if (cfg->max_output == 0 || cfg->max_output > FP_MAX_IO_BYTES) return -EINVAL;
  if (cfg->timeout_ms > INT_MAX) return -EINVAL;
  if (cfg->max_memory_mb > 1024u * 1024u) return -EINVAL; /* 1 TiB */
  if (cfg->max_rss_mb > 1024u * 1024u) return -EINVAL;
  if (cfg->max_attempts > 100) return -EINVAL;
  if (cfg->max_workers != 0) {
    unsigned lo = cfg->min_workers ? cfg->min_workers : 1;
    if (lo > cfg->workers || cfg->workers > cfg->max_workers ||
        cfg->max_workers > FP_MAX_WORKERS)
      return -EINVAL;
  } else if (cfg->min_workers != 0) {
    return -EINVAL;
  }
  struct fp__geometry g = {
      cfg->slots,
      cfg->max_workers > cfg->workers ? cfg->max_workers : cfg->workers, 1,
      (uint32_t)cfg->max_input, (uint32_t)cfg->max_output};
  if (fp__seg_bytes(&g) == 0) return -EINVAL;
  return 0;
}
