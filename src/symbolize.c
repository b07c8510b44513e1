/*
 * Turning raw stack frames into "function+0xoff (file)", in the supervisor.
 *
 * dladdr() knows only exported (dynamic) symbols, so a plugin's static
 * functions, or any function of an executable not linked with -rdynamic,
 * would stay anonymous. We read the file's ELF symbol table (.symtab, or
 * .dynsym when the file is stripped) instead. Files are parsed once and
 * kept: a crash loop costs one lookup per frame, not one parse.
 */
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"

struct sym {
  uintptr_t addr;
  size_t size;
  const char *name;
};

struct symfile {
  char *path;
  int is_exec;      /* ET_EXEC: addresses are absolute */
  struct sym *syms; /* sorted by addr */
  size_t n;
  char *names; /* copy of the string table */
};

#define MAX_FILES 32
static struct symfile files[MAX_FILES];
static size_t nfiles;

static int by_addr(const void *a, const void *b) {
  uintptr_t x = ((const struct sym *)a)->addr;
  uintptr_t y = ((const struct sym *)b)->addr;
  return x < y ? -1 : x > y;
}

/* Parse the function symbols of an ELF64 file. 0 or -errno. */
static int load(struct symfile *f, const char *path) {
  /*
   * The path comes from shared memory a task may have written: never
   * block on it (a FIFO, a device), read regular files only.
   */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return -errno;
  struct stat st;
  void *map = MAP_FAILED;
  int err = -EINVAL;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      (size_t)st.st_size < sizeof(Elf64_Ehdr))
    goto out;
  map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) goto out;
  const unsigned char *base = map;
  size_t len = (size_t)st.st_size;
  const Elf64_Ehdr *eh = map;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > len ||
      (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > len - eh->e_shoff)
    goto out;
  const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
  const Elf64_Shdr *symtab = NULL;
  for (int k = 0; k < eh->e_shnum; k++)
    if (sh[k].sh_type == SHT_SYMTAB) symtab = &sh[k];
  if (symtab == NULL)
    for (int k = 0; k < eh->e_shnum; k++)
      if (sh[k].sh_type == SHT_DYNSYM) symtab = &sh[k];
  if (symtab == NULL || symtab->sh_link >= eh->e_shnum) goto out;
  const Elf64_Shdr *strtab = &sh[symtab->sh_link];
  if (symtab->sh_offset > len || symtab->sh_size > len - symtab->sh_offset ||
      strtab->sh_offset > len || strtab->sh_size > len - strtab->sh_offset ||
      strtab->sh_size == 0)
    goto out;
  size_t nsym = symtab->sh_size / sizeof(Elf64_Sym);
  const Elf64_Sym *sy = (const Elf64_Sym *)(base + symtab->sh_offset);
  f->names = malloc(strtab->sh_size);
  f->syms = calloc(nsym ? nsym : 1, sizeof(*f->syms));
  if (f->names == NULL || f->syms == NULL) {
    err = -ENOMEM;
    goto out;
  }
  memcpy(f->names, base + strtab->sh_offset, strtab->sh_size);
  f->names[strtab->sh_size - 1] = '\0';
  for (size_t k = 0; k < nsym; k++) {
    if (ELF64_ST_TYPE(sy[k].st_info) != STT_FUNC || sy[k].st_value == 0 ||
        sy[k].st_name >= strtab->sh_size)
      continue;
    f->syms[f->n++] =
        (struct sym){sy[k].st_value, sy[k].st_size, f->names + sy[k].st_name};
  }
  qsort(f->syms, f->n, sizeof(*f->syms), by_addr);
  f->is_exec = eh->e_type == ET_EXEC;
  err = 0;
out:
  if (map != MAP_FAILED) munmap(map, (size_t)st.st_size);
  close(fd);
  return err;
}

static struct symfile *get(const char *path) {
  for (size_t k = 0; k < nfiles; k++)
    if (strcmp(files[k].path, path) == 0) return &files[k];
  if (nfiles == MAX_FILES) return NULL; /* a cache, not a registry */
  struct symfile *f = &files[nfiles];
  memset(f, 0, sizeof(*f));
  if (load(f, path) < 0) {
    free(f->names);
    free(f->syms);
    f->syms = NULL;
    f->names = NULL;
    f->n = 0;
  }
  f->path = strdup(path);
  if (f->path == NULL) return NULL;
  nfiles++;
  return f;
}

int fp__symbolize(const char *path, uintptr_t base, uintptr_t pc, char *out,
                  size_t cap) {
  struct symfile *f = get(path);
  if (f == NULL || f->n == 0) return -ENOENT;
  uintptr_t a = f->is_exec ? pc : pc - base;
  /* The last symbol starting at or below a. */
  size_t lo = 0, hi = f->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (f->syms[mid].addr <= a) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return -ENOENT;
  const struct sym *s = &f->syms[lo - 1];
  if (s->size != 0 && a >= s->addr + s->size) return -ENOENT;
  snprintf(out, cap, "%s+0x%lx", s->name, (unsigned long)(a - s->addr));
  return 0;
}

static const char *basename_of(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

/* One frame of a raw report. */
struct frame {
  unsigned long pc, base;
  const char *path;
  char sym[160];
  int named;
};

static int handler_frame(const struct frame *f) {
  static const char *const ours[] = {"write_report", "on_fault",
                                     "on_dump",      "backtrace",
                                     "__restore_rt", "__interceptor_backtrace"};
  if (!f->named) return 0;
  for (size_t k = 0; k < sizeof(ours) / sizeof(ours[0]); k++) {
    size_t n = strlen(ours[k]);
    /* "name+0x..", or a gcc clone such as "name.part.0+0x..". */
    if (strncmp(f->sym, ours[k], n) == 0 &&
        (f->sym[n] == '+' || f->sym[n] == '.'))
      return 1;
  }
  return 0;
}

size_t fp__report_render(const struct fp__report *rep, uint64_t task_id,
                         char *out, size_t cap) {
  if (cap == 0 || task_id == 0 || atomic_load(&rep->task_id) != task_id)
    return 0;
  uint32_t len = atomic_load(&rep->len);
  if (len > sizeof(rep->text)) return 0;
  char raw[sizeof(rep->text) + 1];
  memcpy(raw, rep->text, len);
  raw[len] = '\0';
  if (len >= 6 && memcmp(raw, "T 0 0\n", 6) == 0) {
    /* A handler's own text (fp_task_crashed): verbatim. */
    size_t n = len - 6 < cap - 1 ? len - 6 : cap - 1;
    memcpy(out, raw + 6, n);
    out[n] = '\0';
    return n;
  }
  struct frame fr[48];
  int nf = 0;
  size_t o = 0;
  char *save = NULL;
  for (char *line = strtok_r(raw, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    char kind;
    long sig;
    unsigned long a, b;
    int used = 0;
    if (sscanf(line, "F %lx %lx %n", &a, &b, &used) >= 2 && used > 0) {
      if (nf == (int)(sizeof(fr) / sizeof(fr[0]))) continue;
      struct frame *f = &fr[nf++];
      f->pc = a;
      f->base = b;
      f->path = line + used;
      /*
       * Return addresses point after their call; for a call that never
       * returns (abort) that is already the next function: look up pc - 1.
       * The interrupted frame's pc is exact, but pc - 1 is inside the same
       * instruction's function too unless it starts it: close enough.
       */
      f->named = f->path[0] == '/' &&
                 fp__symbolize(f->path, (uintptr_t)b, (uintptr_t)a - 1, f->sym,
                               sizeof(f->sym)) == 0;
    } else if (o == 0 && sscanf(line, "%c %ld %lx", &kind, &sig, &a) == 3) {
      /* "S SIG ADDR SENT PID UID SELF" (report.c); without the last four
       * fields, the signal is taken as a fault. */
      int sent = 0;
      long spid = 0, suid = 0, self = 0;
      if (kind == 'S' && sscanf(line, "%*c %*d %*x %d %ld %ld %ld", &sent,
                                &spid, &suid, &self) != 4)
        sent = 0;
      if (kind == 'S') {
        const char *n = sigabbrev_np((int)sig);
        used = snprintf(out, cap, "SIG%s", n ? n : "?");
        if (used < 0 || (size_t)used >= cap) {
          /* truncated: nothing more fits */
        } else if (sent && !(sig == SIGABRT && spid == self)) {
          /* Sent, not a fault: name the sender (abort() by itself says
           * enough with its backtrace). */
          used += snprintf(out + used, cap - (size_t)used,
                           " sent by pid %ld (uid %ld%s)", spid, suid,
                           spid == self ? ", the worker itself" : "");
        } else if (!sent && (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE ||
                             sig == SIGILL)) {
          used +=
              snprintf(out + used, cap - (size_t)used, " at address 0x%lx", a);
        }
      } else if (kind == 'L') {
        used = snprintf(out, cap,
                        "returned after %ld.%03ld ms, past its %lu ms limit",
                        sig / 1000, sig % 1000, a);
      } else {
        used = snprintf(out, cap, "stuck in:");
      }
      o = used < 0 ? 0 : (size_t)used < cap ? (size_t)used : cap - 1;
    }
  }
  /*
   * Leave out the handler's own frames: ours, then the signal trampoline
   * (named __restore_rt where libc keeps its symbols, else the one frame
   * after ours).
   */
  int first = 0;
  while (first < nf && handler_frame(&fr[first])) first++;
  if (first > 0 && first < nf && !fr[first].named &&
      strstr(fr[first].path, "libc") != NULL)
    first++;
  for (int k = first, n = 0; k < nf && o + 1 < cap; k++, n++) {
    int used;
    if (fr[k].named)
      used = snprintf(out + o, cap - o, "\n#%d %s (%s)", n, fr[k].sym,
                      basename_of(fr[k].path));
    else
      used = snprintf(out + o, cap - o, "\n#%d 0x%lx (%s)", n, fr[k].pc,
                      basename_of(fr[k].path));
    if (used < 0) break;
    o += (size_t)used < cap - o ? (size_t)used : cap - o - 1;
  }
  out[o] = '\0';
  return o;
}
