/*
 * dlopen()-based handler plugins.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin.h"

static int is_identifier(const char *s) {
  if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
    return 0;
  for (s++; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '_'))
      return 0;
  return 1;
}

/* dlerror() text, or a placeholder: it is NULL when a symbol exists but its
 * value is NULL. */
static const char *dl_reason(void) {
  const char *e = dlerror();

  return e ? e : "symbol resolves to NULL";
}

/*
 * Look up `name` in `dl`. Returns the address, or NULL with the reason in
 * *why (dlerror() text). Clearing dlerror() first is what lets a NULL
 * return be told apart from a stale error of an earlier call.
 */
static void *lookup(void *dl, const char *name, const char **why) {
  void *sym;

  (void)dlerror();
  sym = dlsym(dl, name);
  if (!sym) *why = dl_reason();
  return sym;
}

/*
 * dlopen() the file at `path` under the name "/proc/self/fd/N", N a
 * descriptor of it we keep open while it is loaded (*fd). The loader
 * returns an object already loaded under the same name, or from the same
 * file (device and inode), instead of loading it again: a name no loaded
 * object has is what makes a reload read a new build of the file, and
 * the same file is still loaded once. Where /proc is not mounted, the
 * path itself is the name (a reload then finds the old object). Returns
 * the handle, or NULL with the reason in err (*fd then -1).
 */
static void *open_by_fd(const char *path, int *fd, char *err, size_t errlen) {
  char name[64];
  void *dl;
  const char *e;
  size_t nlen;

  do *fd = open(path, O_RDONLY | O_CLOEXEC);
  while (*fd < 0 && errno == EINTR);
  if (*fd < 0) {
    snprintf(err, errlen, "cannot load '%s': %s", path, strerror(errno));
    return NULL;
  }
  snprintf(name, sizeof name, "/proc/self/fd/%d", *fd);
  if (access(name, F_OK) != 0) {
    close(*fd);
    *fd = -1;
    snprintf(name, sizeof name, "%s", "");
  }
  (void)dlerror();
  dl = dlopen(name[0] ? name : path, RTLD_NOW | RTLD_LOCAL);
  if (dl) return dl;
  /* The loader's text starts with the name it was given: say the path. */
  e = dl_reason();
  nlen = strlen(name);
  if (nlen && !strncmp(e, name, nlen) && !strncmp(e + nlen, ": ", 2))
    e += nlen + 2;
  snprintf(err, errlen, "cannot load '%s': %s", path, e);
  if (*fd >= 0) close(*fd);
  *fd = -1;
  return NULL;
}

int cli_plugin_load(struct cli_plugin *p, const char *spec, char *err,
                    size_t errlen) {
  const char *colon = strrchr(spec, ':');
  const char *sym = CLI_PLUGIN_HANDLER;
  const char *why = NULL;
  char *path = NULL;
  size_t plen = strlen(spec);
  void *dl = NULL, *h;

  p->fd = -1;
  if (colon && colon[1] == '\0') {
    snprintf(err, errlen, "'%s': empty symbol name after ':'", spec);
    return -1;
  }
  if (colon && is_identifier(colon + 1)) {
    sym = colon + 1;
    plen = (size_t)(colon - spec);
  }
  if (plen == 0) {
    snprintf(err, errlen, "'%s': empty library path", spec);
    return -1;
  }
  /* room for "./", the path and its NUL */
  path = malloc(plen + 3);
  if (!path) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (memchr(spec, '/', plen)) {
    memcpy(path, spec, plen);
    path[plen] = '\0';
  } else {
    memcpy(path, "./", 2);
    memcpy(path + 2, spec, plen);
    path[plen + 2] = '\0';
  }

  dl = open_by_fd(path, &p->fd, err, errlen);
  if (!dl) goto fail;
  h = lookup(dl, sym, &why);
  if (!h) {
    snprintf(err, errlen, "no handler symbol '%s' in '%s': %s", sym, path, why);
    goto fail;
  }
  /* POSIX guarantees that a dlsym() result converts to a function pointer
   * (dlsym is unusable otherwise); gnu11 without -pedantic accepts it. */
  p->dl = dl;
  p->handler = (fp_handler_fn)h;
  p->init = (fp_init_fn)lookup(dl, CLI_PLUGIN_INIT, &why);
  p->fini = (fp_fini_fn)lookup(dl, CLI_PLUGIN_FINI, &why);
  free(path);
  return 0;

fail:
  if (dl) dlclose(dl);
  if (p->fd >= 0) close(p->fd);
  p->fd = -1;
  free(path);
  return -1;
}

void cli_plugin_unload(struct cli_plugin *p) {
  if (p->dl) dlclose(p->dl);
  if (p->fd >= 0) close(p->fd);
  memset(p, 0, sizeof *p);
  p->fd = -1;
}
