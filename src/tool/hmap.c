/*
 * The hash map's table: sizing and release. The lookups are inline in
 * hmap.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

int tool_hmap_init(struct tool_hmap *m, size_t cap) {
  size_t rows = 16;
  unsigned bits = 4;

  memset(m, 0, sizeof *m);
  while (rows < 2 * cap) {
    rows <<= 1;
    bits++;
  }
  m->keys = calloc(rows, sizeof *m->keys);
  m->vals = calloc(rows, sizeof *m->vals);
  if (m->keys == NULL || m->vals == NULL) {
    tool_hmap_free(m);
    return -ENOMEM;
  }
  m->mask = rows - 1;
  m->shift = 64 - bits;
  return 0;
}

void tool_hmap_free(struct tool_hmap *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}
