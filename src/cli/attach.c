/*
 * Attaching to named pools. See attach.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attach.h"
#include "cli.h"

_Static_assert(FP_NAME_MAX == 64, "CLI_NAME_RULES quotes FP_NAME_MAX");

#define ATTACH_START_POLL_MS 10

int cli_name_check(const char *cmd, const char *name)
{
  if (fp_name_validate(name) == 0)
    return 0;
  fprintf(stderr, "%s: --name: '%s' is not a valid pool name: use "
          CLI_NAME_RULES "\n", cmd, name);
  return -1;
}

void cli_pool_error(const char *cmd, const char *name, int err)
{
  switch (-err) {
  case ENOENT:
    fprintf(stderr, "%s: no forkpool named %s is running\n", cmd, name);
    break;
  case ECONNREFUSED:
    fprintf(stderr, "%s: no forkpool named %s is running (its supervisor "
            "died and left /dev/shm/forkpool.%s, which the next "
            "'forkpool serve --name %s' replaces)\n", cmd, name, name, name);
    break;
  case EACCES:
    fprintf(stderr, "%s: permission denied for pool %s: /dev/shm/forkpool.%s "
            "belongs to another user or is not accessible\n", cmd, name, name);
    break;
  case EBADMSG:
    fprintf(stderr, "%s: /dev/shm/forkpool.%s is not a forkpool segment or "
            "corrupt\n", cmd, name);
    break;
  case EPROTO:
    fprintf(stderr, "%s: /dev/shm/forkpool.%s is a segment of another "
            "forkpool version (this is %s)\n", cmd, name, fp_version());
    break;
  case EUSERS:
    fprintf(stderr, "%s: pool %s has too many producers attached (its "
            "--max-clients); try again later\n", cmd, name);
    break;
  case ESHUTDOWN:
    fprintf(stderr, "%s: pool %s is shutting down\n", cmd, name);
    break;
  case EPIPE:
    fprintf(stderr, "%s: supervisor of %s died\n", cmd, name);
    break;
  default:
    fprintf(stderr, "%s: pool %s: %s\n", cmd, name, fp_strerror(err));
    break;
  }
}

static void sleep_ms(long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

  nanosleep(&ts, NULL);
}

int cli_attach(const char *cmd, const char *name, unsigned flags,
               fp_pool **out)
{
  fp_pool *p = NULL;
  fp_stats st;
  int r = fp_pool_open(&p, name, flags);

  if (r < 0) {
    cli_pool_error(cmd, name, r);
    return CLI_EXIT_NOPOOL;
  }
  /*
   * A pool accepts producers from the moment its segment exists, but
   * fp_submit() says -ESHUTDOWN until every worker started: wait for that,
   * as long as the supervisor lives (it gives up by itself when the
   * workers cannot start).
   */
  while ((flags & FP_OPEN_MONITOR) == 0 && fp_pool_stats(p, &st) == 0 &&
         strcmp(st.state, "starting") == 0) {
    if (st.supervisor == 0) {
      fp_pool_free(p);
      cli_pool_error(cmd, name, -EPIPE);
      return CLI_EXIT_NOPOOL;
    }
    sleep_ms(ATTACH_START_POLL_MS);
  }
  *out = p;
  return 0;
}
