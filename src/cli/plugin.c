/*
 * dlopen()-based handler plugins.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

static int is_identifier(const char *s)
{
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
static const char *dl_reason(void)
{
  const char *e = dlerror();

  return e ? e : "symbol resolves to NULL";
}

/*
 * Look up `name` in `dl`. Returns the address, or NULL with the reason in
 * *why (dlerror() text). Clearing dlerror() first is what lets a NULL
 * return be told apart from a stale error of an earlier call.
 */
static void *lookup(void *dl, const char *name, const char **why)
{
  void *sym;

  (void)dlerror();
  sym = dlsym(dl, name);
  if (!sym)
    *why = dl_reason();
  return sym;
}

int cli_plugin_load(struct cli_plugin *p, const char *spec, char *err,
                    size_t errlen)
{
  const char *colon = strrchr(spec, ':');
  const char *sym = CLI_PLUGIN_HANDLER;
  const char *why = NULL;
  char *path = NULL;
  size_t plen = strlen(spec);
  void *dl = NULL, *h;

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

  (void)dlerror();
  dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    snprintf(err, errlen, "cannot load '%s': %s", path, dl_reason());
    goto fail;
  }
  h = lookup(dl, sym, &why);
  if (!h) {
    snprintf(err, errlen, "no handler symbol '%s' in '%s': %s", sym, path,
             why);
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
  if (dl)
    dlclose(dl);
  free(path);
  return -1;
}

void cli_plugin_unload(struct cli_plugin *p)
{
  if (p->dl)
    dlclose(p->dl);
  memset(p, 0, sizeof *p);
}
