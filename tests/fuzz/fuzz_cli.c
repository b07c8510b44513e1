/*
 * libFuzzer target: the command-line tool's input side and output escaping.
 * Every input drives four checks, each against an independent model:
 *
 *   1. The record reader (src/cli/input.c): the payload is fed through a
 *      pipe in chunks of fuzzer-chosen sizes, newline- or NUL-delimited,
 *      with a fuzzer-chosen --max-input. The records must be exactly the
 *      payload split at the delimiter (no empty record after a final
 *      delimiter, none at all for empty input), each longer than the limit
 *      reported as oversized with its full length, and the reader's buffer
 *      must stay within max_len plus one read. The argument-list mode too.
 *   2. Option parsing (src/tool/args.c): the payload split at NULs is an
 *      argv; "--flag VALUE" / "--flag=VALUE" matching, strict decimal and
 *      octal parsing, against a model of what each must accept.
 *   3. Escaping (src/cli/json.c): the JSON escape of any bytes, quoted,
 *      must be a valid JSON string in valid UTF-8 that decodes back to the
 *      same bytes (\u0080-\u00ff escapes standing for raw bytes); the
 *      plain escape must be valid UTF-8 with no control byte (no raw
 *      newline or tab), and decode back to the same bytes too.
 *   4. Result lines (src/cli/format.c through the buffered writer of
 *      src/cli/output.c, with a fuzzer-chosen buffer size): a JSON line
 *      is one valid JSON object with known keys and the right seq; a plain
 *      line is STATUS TAB DETAIL with one tab and one newline.
 *
 * Build: see mk/quality.mk (make fuzz). Run alone:
 *   build-fuzz/fuzz_cli tests/fuzz/corpus/cli
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tool/args.h"
#include "format.h"
#include "input.h"
#include "json.h"
#include "output.h"

#define REQUIRE(c)                                                      \
  do {                                                                  \
    if (!(c)) {                                                         \
      fprintf(stderr, "fuzz_cli: %s:%d: %s\n", __FILE__, __LINE__, #c); \
      abort();                                                          \
    }                                                                   \
  } while (0)

static FILE *devnull;  /* the parsers' messages go here, not to the log */
static int memfd = -1; /* where the writer under test writes */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  devnull = fopen("/dev/null", "w");
  memfd = memfd_create("fuzz_cli", MFD_CLOEXEC);
  if (devnull == NULL || memfd < 0) abort();
  return 0;
}

/* ---- output capture ------------------------------------------------- */

static unsigned char *outbuf;
static size_t outcap;

/* Start a writer on the memfd with a buffer of `cap` bytes. */
static void out_begin(struct cli_out *o, size_t cap) {
  REQUIRE(ftruncate(memfd, 0) == 0);
  REQUIRE(lseek(memfd, 0, SEEK_SET) == 0);
  REQUIRE(cli_out_init(o, memfd, cap) == 0);
}

/* Flush and return what the writer wrote, NUL-terminated, in *len. */
static const unsigned char *out_end(struct cli_out *o, size_t *len) {
  REQUIRE(cli_out_flush(o) == 0);
  cli_out_free(o);
  off_t n = lseek(memfd, 0, SEEK_CUR);
  REQUIRE(n >= 0);
  if ((size_t)n + 1 > outcap) {
    outcap = (size_t)n + 1;
    outbuf = realloc(outbuf, outcap);
    REQUIRE(outbuf != NULL);
  }
  REQUIRE(pread(memfd, outbuf, (size_t)n, 0) == n);
  outbuf[n] = 0;
  *len = (size_t)n;
  return outbuf;
}

/* ---- UTF-8 and JSON, written independently of json.c ---------------- */

/* Decode one well-formed UTF-8 sequence at s (n > 0 bytes): its length,
 * or 0 when ill-formed (overlong, surrogate, above U+10FFFF, truncated). */
static size_t utf8_len(const unsigned char *s, size_t n, uint32_t *cp) {
  uint32_t c = s[0], min;
  size_t len;
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if ((c & 0xe0) == 0xc0) {
    len = 2;
    c &= 0x1f;
    min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3;
    c &= 0x0f;
    min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4;
    c &= 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    c = c << 6 | (s[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
  *cp = c;
  return len;
}

static int valid_utf8(const unsigned char *s, size_t n) {
  uint32_t cp;
  for (size_t i = 0; i < n;) {
    size_t l = utf8_len(s + i, n - i, &cp);
    if (l == 0) return 0;
    i += l;
  }
  return 1;
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static size_t put_utf8(unsigned char *d, uint32_t cp) {
  if (cp < 0x80) {
    d[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    d[0] = (unsigned char)(0xc0 | cp >> 6);
    d[1] = (unsigned char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    d[0] = (unsigned char)(0xe0 | cp >> 12);
    d[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    d[2] = (unsigned char)(0x80 | (cp & 0x3f));
    return 3;
  }
  d[0] = (unsigned char)(0xf0 | cp >> 18);
  d[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
  d[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
  d[3] = (unsigned char)(0x80 | (cp & 0x3f));
  return 4;
}

/*
 * Parse a JSON string starting at s[*i] == '"' (RFC 8259). Returns 1 and
 * advances *i past the closing quote, or 0. When dec is not NULL, writes
 * the decoded bytes there (\u0080-\u00ff as the raw byte, for the escaper's
 * round trip) and their count in *declen.
 */
static int json_string(const unsigned char *s, size_t n, size_t *i,
                       unsigned char *dec, size_t *declen) {
  size_t k = *i, d = 0;
  if (k >= n || s[k] != '"') return 0;
  k++;
  while (k < n && s[k] != '"') {
    uint32_t cp;
    if (s[k] < 0x20) return 0;
    if (s[k] != '\\') {
      size_t l = utf8_len(s + k, n - k, &cp);
      if (l == 0) return 0;
      if (dec) memcpy(dec + d, s + k, l);
      d += l;
      k += l;
      continue;
    }
    if (++k >= n) return 0;
    unsigned char e = s[k++], c;
    switch (e) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u':
      if (n - k < 4) return 0;
      cp = 0;
      for (int h = 0; h < 4; h++) {
        int v = hexval(s[k + h]);
        if (v < 0) return 0;
        cp = cp << 4 | (uint32_t)v;
      }
      k += 4;
      /* The escaper writes only \u00XX: no surrogate pairs to join. */
      if (cp >= 0xd800 && cp <= 0xdfff) return 0;
      if (cp >= 0x80 && cp <= 0xff) {
        if (dec) dec[d] = (unsigned char)cp;
        d++;
      } else {
        unsigned char tmp[4];
        size_t l = put_utf8(tmp, cp);
        if (dec) memcpy(dec + d, tmp, l);
        d += l;
      }
      continue;
    default: return 0;
    }
    if (dec) dec[d] = c;
    d++;
  }
  if (k >= n) return 0;
  *i = k + 1;
  if (declen) *declen = d;
  return 1;
}

static void skip_ws(const unsigned char *s, size_t n, size_t *i) {
  while (*i < n &&
         (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n' || s[*i] == '\r'))
    (*i)++;
}

static int json_number(const unsigned char *s, size_t n, size_t *i) {
  size_t k = *i;
  if (k < n && s[k] == '-') k++;
  if (k >= n) return 0;
  if (s[k] == '0') {
    k++;
  } else if (s[k] >= '1' && s[k] <= '9') {
    while (k < n && s[k] >= '0' && s[k] <= '9') k++;
  } else {
    return 0;
  }
  if (k < n && s[k] == '.') {
    k++;
    if (k >= n || s[k] < '0' || s[k] > '9') return 0;
    while (k < n && s[k] >= '0' && s[k] <= '9') k++;
  }
  if (k < n && (s[k] == 'e' || s[k] == 'E')) {
    k++;
    if (k < n && (s[k] == '+' || s[k] == '-')) k++;
    if (k >= n || s[k] < '0' || s[k] > '9') return 0;
    while (k < n && s[k] >= '0' && s[k] <= '9') k++;
  }
  *i = k;
  return 1;
}

static int json_value(const unsigned char *s, size_t n, size_t *i, int depth);

static int json_object(const unsigned char *s, size_t n, size_t *i, int depth,
                       int (*on_key)(const unsigned char *, size_t,
                                     const unsigned char *, size_t)) {
  if (*i >= n || s[*i] != '{') return 0;
  (*i)++;
  skip_ws(s, n, i);
  if (*i < n && s[*i] == '}') {
    (*i)++;
    return 1;
  }
  for (;;) {
    size_t k0 = *i;
    if (!json_string(s, n, i, NULL, NULL)) return 0;
    size_t k1 = *i;
    skip_ws(s, n, i);
    if (*i >= n || s[*i] != ':') return 0;
    (*i)++;
    skip_ws(s, n, i);
    size_t v0 = *i;
    if (!json_value(s, n, i, depth + 1)) return 0;
    if (on_key && !on_key(s + k0 + 1, k1 - k0 - 2, s + v0, *i - v0)) return 0;
    skip_ws(s, n, i);
    if (*i < n && s[*i] == ',') {
      (*i)++;
      skip_ws(s, n, i);
      continue;
    }
    if (*i < n && s[*i] == '}') {
      (*i)++;
      return 1;
    }
    return 0;
  }
}

static int json_value(const unsigned char *s, size_t n, size_t *i, int depth) {
  if (depth > 16 || *i >= n) return 0;
  switch (s[*i]) {
  case '{': return json_object(s, n, i, depth, NULL);
  case '[':
    (*i)++;
    skip_ws(s, n, i);
    if (*i < n && s[*i] == ']') {
      (*i)++;
      return 1;
    }
    for (;;) {
      if (!json_value(s, n, i, depth + 1)) return 0;
      skip_ws(s, n, i);
      if (*i < n && s[*i] == ',') {
        (*i)++;
        skip_ws(s, n, i);
        continue;
      }
      if (*i < n && s[*i] == ']') {
        (*i)++;
        return 1;
      }
      return 0;
    }
  case '"': return json_string(s, n, i, NULL, NULL);
  case 't':
    if (n - *i >= 4 && memcmp(s + *i, "true", 4) == 0) return *i += 4, 1;
    return 0;
  case 'f':
    if (n - *i >= 5 && memcmp(s + *i, "false", 5) == 0) return *i += 5, 1;
    return 0;
  case 'n':
    if (n - *i >= 4 && memcmp(s + *i, "null", 4) == 0) return *i += 4, 1;
    return 0;
  default: return json_number(s, n, i);
  }
}

/* ---- 1. the record reader ------------------------------------------- */

/* A tiny deterministic generator for chunk sizes. */
static uint32_t rng_next(uint32_t *st) {
  *st ^= *st << 13;
  *st ^= *st >> 17;
  *st ^= *st << 5;
  return *st;
}

/* Take the next record from the reader, feeding it through the pipe. */
static int next_record(struct cli_input *in, struct cli_record *rec, int wfd,
                       const uint8_t *p, size_t n, size_t *sent, int *closed,
                       uint32_t *rng, unsigned maxchunk) {
  for (int guard = 0; guard < 1000000; guard++) {
    int r = cli_input_next(in, rec);
    if (r != CLI_INPUT_MORE) return r;
    r = cli_input_fill(in, 0);
    REQUIRE(r >= 0);
    if (r == 1) continue;
    /* Nothing to read: write the next chunk, or end the stream. */
    if (*sent < n) {
      size_t c = 1 + rng_next(rng) % maxchunk;
      if (c > n - *sent) c = n - *sent;
      REQUIRE(write(wfd, p + *sent, c) == (ssize_t)c);
      *sent += c;
    } else if (!*closed) {
      close(wfd);
      *closed = 1;
    } else {
      REQUIRE(!"the reader wants more after the end of its stream");
    }
  }
  REQUIRE(!"the reader made no progress");
  return 0;
}

static void check_reader(const uint8_t *data, size_t size) {
  if (size < 3) return;
  int delim = data[0] & 1 ? '\0' : '\n';
  /* Limits around the records' sizes: 0..255, or up to 64 KiB. */
  size_t max_len = data[0] & 2 ? data[1] : (size_t)data[1] * 257u;
  uint32_t rng = 0x9e3779b9u ^ (uint32_t)data[2] << 8 ^ data[0];
  unsigned maxchunk = data[0] & 4 ? 4096 : 1u + data[2] % 64u;
  const uint8_t *p = data + 3;
  size_t n = size - 3;

  int fds[2];
  REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
  struct cli_input in;
  REQUIRE(cli_input_init(&in, fds[0], delim, max_len) == 0);
  size_t sent = 0, pos = 0; /* pos: start of the next expected record */
  int closed = 0;
  struct cli_record rec;
  for (;;) {
    int r =
        next_record(&in, &rec, fds[1], p, n, &sent, &closed, &rng, maxchunk);
    /* Peeking again gives the same record. */
    if (r == CLI_INPUT_RECORD) {
      struct cli_record again;
      REQUIRE(cli_input_next(&in, &again) == CLI_INPUT_RECORD);
      REQUIRE(again.len == rec.len && again.oversize == rec.oversize &&
              again.full_len == rec.full_len && again.data == rec.data);
    }
    if (pos == n) {
      /* Everything was a record already: the stream has ended. */
      REQUIRE(r == CLI_INPUT_END);
      break;
    }
    REQUIRE(r == CLI_INPUT_RECORD);
    const uint8_t *d = memchr(p + pos, delim, n - pos);
    size_t want = d ? (size_t)(d - (p + pos)) : n - pos;
    REQUIRE(rec.full_len == want);
    if (want > max_len) {
      REQUIRE(rec.oversize && rec.data == NULL);
    } else {
      REQUIRE(!rec.oversize && rec.len == want);
      REQUIRE(want == 0 || memcmp(rec.data, p + pos, want) == 0);
    }
    /* Memory stays bounded by the limit and the read size: a partial
     * record of at most max_len plus room for one 64 KiB read, at most
     * doubled by the buffer's growth. */
    REQUIRE(in.cap <= 2 * (max_len + 65536u));
    cli_input_consume(&in);
    pos += want + (d != NULL);
  }
  REQUIRE(cli_input_next(&in, &rec) == CLI_INPUT_END);
  cli_input_free(&in);
  close(fds[0]);
  if (!closed) close(fds[1]);
}

/* ---- 2. option parsing ---------------------------------------------- */

#define MAX_ARGS 16

/* Split p[0..n) at NULs into at most MAX_ARGS strings (copies). */
static int split_args(const uint8_t *p, size_t n, char **argv) {
  int argc = 0;
  size_t s = 0;
  for (size_t k = 0; k <= n && argc < MAX_ARGS; k++) {
    if (k < n && p[k] != 0) continue;
    argv[argc] = malloc(k - s + 1);
    REQUIRE(argv[argc] != NULL);
    memcpy(argv[argc], p + s, k - s);
    argv[argc][k - s] = 0;
    argc++;
    s = k + 1;
  }
  return argc;
}

/* Model of tool_parse_u64: digits only, not empty, in [min, max]. */
static int model_u64(const char *s, uint64_t min, uint64_t max, uint64_t *v) {
  unsigned __int128 x = 0;
  if (*s == 0) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    x = x * 10 + (unsigned)(*s - '0');
    if (x > UINT64_MAX) x = (unsigned __int128)UINT64_MAX + 1; /* saturate */
  }
  if (x < min || x > max) return -1;
  *v = (uint64_t)x;
  return 0;
}

static int model_octal(const char *s, unsigned max, unsigned *v) {
  uint64_t x = 0;
  if (*s == 0) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '7') return -1;
    x = x * 8 + (unsigned)(*s - '0');
    if (x > max) return -1;
  }
  *v = (unsigned)x;
  return 0;
}

static void check_args(const uint8_t *data, size_t size) {
  static const uint64_t bounds[] = {
      0, 1, 9, 1024, 65536, 2147483647u, 4294967295u, UINT64_MAX};
  if (size < 2) return;
  uint64_t min = bounds[data[0] % 8], max = bounds[data[0] / 8 % 8];
  unsigned omax = data[1] & 1 ? 0777 : 07777777;
  char *argv[MAX_ARGS + 1] = {0};
  int argc = split_args(data + 2, size - 2, argv);
  FILE *saved = stderr;
  stderr = devnull; /* the parsers print their complaints there */

  for (int a = 0; a < argc; a++) {
    uint64_t v = 12345, mv;
    int r = tool_parse_u64("fuzz", "--x", argv[a], min, max, &v);
    int m = model_u64(argv[a], min, max, &mv);
    REQUIRE(r == m);
    REQUIRE(r == 0 ? v == mv : v == 12345); /* untouched on error */
    unsigned o = 7, mo;
    r = tool_parse_octal("fuzz", "--mode", argv[a], omax, &o);
    m = model_octal(argv[a], omax, &mo);
    REQUIRE(r == m);
    REQUIRE(r == 0 ? o == mo : o == 7);
  }

  /* A table like forkpool run's, over the whole argv. */
  struct tool_num_opt opts[3] = {
      {"--workers", 1, 1024, 4, 0},
      {"--max-input", 1, 64u << 20, 65536, 0},
      {"--timeout", 0, 2147483647u, 0, 0},
  };
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    int before = i;
    int r = tool_arg_num("fuzz", argc, argv, &i, opts, 3);
    REQUIRE(r >= -1 && r <= 1);
    REQUIRE(i >= before && i < argc);
    if (r == 1) {
      REQUIRE(i == before || i == before + 1);
      int k;
      for (k = 0; k < 3; k++) {
        size_t l = strlen(opts[k].name);
        if (strncmp(a, opts[k].name, l) == 0 && (a[l] == 0 || a[l] == '='))
          break;
      }
      REQUIRE(k < 3 && opts[k].set);
      const char *val = a[strlen(opts[k].name)] == '='
                            ? a + strlen(opts[k].name) + 1
                            : argv[i];
      uint64_t mv;
      REQUIRE(i == before + (a[strlen(opts[k].name)] == 0));
      REQUIRE(model_u64(val, opts[k].min, opts[k].max, &mv) == 0);
      REQUIRE(opts[k].value == mv);
    } else if (r == 0) {
      REQUIRE(i == before);
      for (int k = 0; k < 3; k++) {
        size_t l = strlen(opts[k].name);
        REQUIRE(
            !(strncmp(a, opts[k].name, l) == 0 && (a[l] == 0 || a[l] == '=')));
      }
    }
    int f = tool_arg_flag("fuzz", argv, i, "--json");
    REQUIRE(f == (strcmp(argv[i], "--json") == 0        ? 1
                  : strncmp(argv[i], "--json=", 7) == 0 ? -1
                                                        : 0));
  }
  stderr = saved;
  for (int a = 0; a < argc; a++) free(argv[a]);
}

/* ---- 3. escaping ------------------------------------------------------ */

static void check_escapes(const uint8_t *p, size_t n) {
  struct cli_out o;
  size_t len, k = 0, declen = 0;
  unsigned char *dec = malloc(n + 1);
  REQUIRE(dec != NULL);

  out_begin(&o, 1 + n % 97);
  cli_out_write(&o, "\"", 1);
  cli_json_escape(&o, p, n);
  cli_out_putc(&o, '"');
  const unsigned char *s = out_end(&o, &len);
  REQUIRE(valid_utf8(s, len));
  REQUIRE(memchr(s, 0x7f, len) == NULL); /* DEL is escaped too */
  REQUIRE(json_string(s, len, &k, dec, &declen));
  REQUIRE(k == len);
  REQUIRE(declen == n && (n == 0 || memcmp(dec, p, n) == 0));

  out_begin(&o, 1 + n % 89);
  cli_plain_escape(&o, p, n);
  s = out_end(&o, &len);
  REQUIRE(valid_utf8(s, len));
  size_t d = 0;
  for (k = 0; k < len; k++) {
    REQUIRE(s[k] >= 0x20 && s[k] != 0x7f); /* no newline, tab, control */
    if (s[k] != '\\') {
      dec[d++] = s[k];
      continue;
    }
    REQUIRE(k + 1 < len);
    switch (s[++k]) {
    case '\\': dec[d++] = '\\'; break;
    case 'n': dec[d++] = '\n'; break;
    case 't': dec[d++] = '\t'; break;
    case 'r': dec[d++] = '\r'; break;
    case 'x':
      REQUIRE(k + 2 < len && hexval(s[k + 1]) >= 0 && hexval(s[k + 2]) >= 0);
      dec[d++] = (unsigned char)(hexval(s[k + 1]) << 4 | hexval(s[k + 2]));
      k += 2;
      break;
    default: REQUIRE(!"unknown escape in plain output");
    }
    REQUIRE(d <= n);
  }
  REQUIRE(d == n && (n == 0 || memcmp(dec, p, n) == 0));
  free(dec);
}

/* ---- 4. result lines ------------------------------------------------- */

static uint64_t want_seq;
static int seen_status;

static int known_key(const unsigned char *k, size_t kl, const unsigned char *v,
                     size_t vl) {
  static const char *const keys[] = {
      "seq",   "status",   "output", "signal", "exit",         "code",
      "error", "attempts", "worker", "ms",     "output_base64"};
  size_t i;
  for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (strlen(keys[i]) == kl && memcmp(keys[i], k, kl) == 0) break;
  if (i == sizeof(keys) / sizeof(keys[0])) return 0;
  if (i == 0) {
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)want_seq);
    if ((size_t)n != vl || memcmp(buf, v, vl) != 0) return 0;
  }
  if (i == 1) seen_status = 1;
  return 1;
}

static uint64_t take(const uint8_t **p, size_t *n, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i<bytes && * n> 0; i++, (*p)++, (*n)--)
    v |= (uint64_t) * *p << (8 * i);
  return v;
}

static void check_format(const uint8_t *data, size_t size) {
  const uint8_t *p = data;
  size_t n = size;
  struct cli_format f;
  struct cli_entry e;
  memset(&f, 0, sizeof(f));
  memset(&e, 0, sizeof(e));
  unsigned flags = (unsigned)take(&p, &n, 1);
  f.json = flags & 1;
  f.max_input = (size_t)take(&p, &n, flags & 2 ? 8 : 2);
  f.wait_ms = (unsigned)take(&p, &n, 4);
  e.state = (enum cli_entry_state)(1 + (flags >> 2) % 3); /* finished ones */
  e.input_len = take(&p, &n, 8);
  /* Any status, in range or not, and any numbers at all. */
  e.res.status =
      (fp_status)(int32_t)(flags & 32 ? take(&p, &n, 4) : take(&p, &n, 1) % 7);
  e.res.code = (int)(int32_t)take(&p, &n, 4);
  e.res.signal =
      (int)(int32_t)(flags & 64 ? take(&p, &n, 4) : take(&p, &n, 1) % 70);
  e.res.exit_code = (int)(int32_t)take(&p, &n, 4);
  e.res.attempts = (unsigned)take(&p, &n, 4);
  e.res.worker = (pid_t)(int32_t)take(&p, &n, 4);
  e.res.run_us = take(&p, &n, 8);
  e.res.output = (unsigned char *)p; /* the rest */
  e.res.output_len = n;
  want_seq = flags & 128 ? UINT64_MAX - size : size;

  struct cli_out o;
  size_t len;
  out_begin(&o, 1 + size % 300);
  int ok = cli_format_result(&o, &f, want_seq, &e);
  const unsigned char *s = out_end(&o, &len);
  REQUIRE(ok == (e.state == CLI_ENTRY_DONE && e.res.status == FP_OK));
  REQUIRE(len >= 2 && s[len - 1] == '\n');
  REQUIRE(memchr(s, '\n', len) == s + len - 1); /* one line */
  REQUIRE(valid_utf8(s, len));
  if (f.json) {
    size_t k = 0;
    seen_status = 0;
    REQUIRE(json_object(s, len - 1, &k, 0, known_key));
    REQUIRE(k == len - 1 && seen_status);
  } else {
    const unsigned char *tab = memchr(s, '\t', len);
    REQUIRE(tab != NULL && tab > s);
    REQUIRE(memchr(tab + 1, '\t', (size_t)(s + len - tab - 1)) == NULL);
    for (size_t k = 0; k < len - 1; k++)
      REQUIRE(s[k] == '\t' || (s[k] >= 0x20 && s[k] != 0x7f));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_reader(data, size);
  check_args(data, size);
  check_escapes(data, size);
  check_format(data, size);
  return 0;
}
