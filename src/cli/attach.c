/*
 * Attaching to named pools. See attach.h.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "cli.h"
#include "tool/clock.h"

_Static_assert(FP_NAME_MAX == 64, "CLI_NAME_RULES quotes FP_NAME_MAX");

#define ATTACH_START_POLL_MS 10

int cli_name_check(const char *cmd, const char *name) {
  if (fp_name_validate(name) == 0) return 0;
  fprintf(stderr,
          "%s: --name: '%s' is not a valid pool name: use " CLI_NAME_RULES "\n",
          cmd, name);
  return -1;
}

/* "bob (uid 1001)", or "uid 1001" when the user has no name. */
static void user_desc(uid_t uid, char *buf, size_t n) {
  struct passwd *pw = getpwuid(uid);

  if (pw) snprintf(buf, n, "%s (uid %ld)", pw->pw_name, (long)uid);
  else snprintf(buf, n, "uid %ld", (long)uid);
}

static void group_desc(gid_t gid, char *buf, size_t n) {
  struct group *gr = getgrgid(gid);

  if (gr) snprintf(buf, n, "%s (gid %ld)", gr->gr_name, (long)gid);
  else snprintf(buf, n, "gid %ld", (long)gid);
}

/* 1 when this process has gid among its effective or supplementary groups. */
static int in_group(gid_t gid) {
  gid_t g[256];
  int n = getgroups(256, g);

  if (getegid() == gid) return 1;
  for (int k = 0; k < n; k++)
    if (g[k] == gid) return 1;
  return 0;
}

int cli_shm_describe(const char *name, char *buf, size_t n) {
  char path[FP_NAME_MAX + 32], who[160], grp[160], target[256];
  struct stat st;
  ssize_t t;

  snprintf(path, sizeof path, "/dev/shm/forkpool.%s", name);
  if (lstat(path, &st) != 0) {
    snprintf(buf, n, "%s: %s", path, strerror(errno));
    return CLI_SHM_GONE;
  }
  if (S_ISLNK(st.st_mode)) {
    t = readlink(path, target, sizeof target - 1);
    target[t > 0 ? t : 0] = '\0';
    snprintf(buf, n,
             "%s is a symbolic link (to '%s'), not a pool segment; "
             "forkpool never follows one",
             path, target);
    return CLI_SHM_LINK;
  }
  user_desc(st.st_uid, who, sizeof who);
  group_desc(st.st_gid, grp, sizeof grp);
  if (!S_ISREG(st.st_mode)) {
    snprintf(buf, n, "%s is not a regular file (owner %s)", path, who);
    return CLI_SHM_ODD;
  }
  if (st.st_uid != geteuid()) {
    snprintf(buf, n, "%s belongs to user %s, group %s, mode %04o%s", path, who,
             grp, (unsigned)(st.st_mode & 07777),
             !in_group(st.st_gid)        ? ", and you are not in its group"
             : (st.st_mode & 060) != 060 ? ", which gives its group no "
                                           "read and write access"
                                         : "");
    return CLI_SHM_FOREIGN;
  }
  if ((st.st_mode & 0600) != 0600) {
    snprintf(buf, n,
             "%s is yours but its mode %04o does not let you read "
             "and write it",
             path, (unsigned)(st.st_mode & 07777));
    return CLI_SHM_MODE;
  }
  snprintf(buf, n, "%s belongs to you, mode %04o", path,
           (unsigned)(st.st_mode & 07777));
  return CLI_SHM_OURS;
}

void cli_pool_error(const char *cmd, const char *name, int err) {
  char desc[600];

  switch (-err) {
  case ENOENT:
    fprintf(stderr, "%s: no forkpool named %s is running\n", cmd, name);
    break;
  case ECONNREFUSED:
    fprintf(stderr,
            "%s: no forkpool named %s is running (its supervisor "
            "died and left /dev/shm/forkpool.%s, which the next "
            "'forkpool serve --name %s' replaces)\n",
            cmd, name, name, name);
    break;
  case EACCES:
    /* Say which: another user's, a mode that shuts us out, or a pool
     * whose header names another creator than the file's owner. */
    if (cli_shm_describe(name, desc, sizeof desc) == CLI_SHM_OURS)
      fprintf(stderr,
              "%s: permission denied for pool %s: %s, but its "
              "header names another user as its creator\n",
              cmd, name, desc);
    else
      fprintf(stderr, "%s: permission denied for pool %s: %s\n", cmd, name,
              desc);
    break;
  case ELOOP:
    cli_shm_describe(name, desc, sizeof desc);
    fprintf(stderr, "%s: cannot attach to pool %s: %s\n", cmd, name, desc);
    break;
  case EBADMSG:
    fprintf(stderr,
            "%s: /dev/shm/forkpool.%s is not a forkpool segment or "
            "corrupt\n",
            cmd, name);
    break;
  case EPROTO:
    fprintf(stderr,
            "%s: /dev/shm/forkpool.%s is a segment of another "
            "forkpool version (this is %s)\n",
            cmd, name, fp_version());
    break;
  case EUSERS:
    fprintf(stderr,
            "%s: pool %s has too many producers attached (its "
            "--max-clients); try again later\n",
            cmd, name);
    break;
  case ESHUTDOWN:
    fprintf(stderr, "%s: pool %s is shutting down\n", cmd, name);
    break;
  case EPIPE: fprintf(stderr, "%s: supervisor of %s died\n", cmd, name); break;
  default:
    fprintf(stderr, "%s: pool %s (/dev/shm/forkpool.%s): %s\n", cmd, name, name,
            fp_strerror(err));
    break;
  }
}

int cli_attach(const char *cmd, const char *name, unsigned flags,
               fp_pool **out) {
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
         st.state == FP_POOL_STARTING) {
    if (st.supervisor == 0) {
      fp_pool_free(p);
      cli_pool_error(cmd, name, -EPIPE);
      return CLI_EXIT_NOPOOL;
    }
    tool_sleep_ms(ATTACH_START_POLL_MS);
  }
  *out = p;
  return 0;
}
