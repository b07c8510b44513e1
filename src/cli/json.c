/*
 * JSON and plain-text escaping of arbitrary bytes. What is valid UTF-8 is
 * tool_utf8_seq_len()'s judgement (src/tool/utf8.c): a JSON parser must
 * accept every sequence we pass through, so we pass through only what is
 * well formed.
 */
#include <string.h>

#include "json.h"

static const char hex[] = "0123456789abcdef";

static void put_u00(struct cli_out *o, unsigned char c) {
  char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

  cli_out_write(o, e, sizeof e);
}

static void put_x(struct cli_out *o, unsigned char c) {
  char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};

  cli_out_write(o, e, sizeof e);
}

void cli_json_escape(struct cli_out *o, const void *s, size_t n) {
  const unsigned char *p = s;
  size_t i = 0;

  while (i < n) {
    unsigned char c = p[i];
    size_t len;

    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      cli_out_putc(o, (char)c);
      i++;
      continue;
    }
    switch (c) {
    case '"':
      cli_out_write(o, "\\\"", 2);
      i++;
      continue;
    case '\\':
      cli_out_write(o, "\\\\", 2);
      i++;
      continue;
    case '\n':
      cli_out_write(o, "\\n", 2);
      i++;
      continue;
    case '\t':
      cli_out_write(o, "\\t", 2);
      i++;
      continue;
    case '\r':
      cli_out_write(o, "\\r", 2);
      i++;
      continue;
    case '\b':
      cli_out_write(o, "\\b", 2);
      i++;
      continue;
    case '\f':
      cli_out_write(o, "\\f", 2);
      i++;
      continue;
    default: break;
    }
    if (c < 0x80) { /* other control characters and DEL */
      put_u00(o, c);
      i++;
      continue;
    }
    len = tool_utf8_seq_len(p + i, n - i);
    if (len == 0) {
      /* Escape this byte alone and look at the next one afresh, so every
       * byte of a broken sequence is escaped and a valid sequence that
       * follows a stray lead byte is still passed through. */
      put_u00(o, c);
      i++;
      continue;
    }
    cli_out_write(o, p + i, len);
    i += len;
  }
}

int cli_utf8_valid(const void *s, size_t n) {
  const unsigned char *p = s;
  size_t i = 0;

  while (i < n) {
    size_t len = tool_utf8_seq_len(p + i, n - i);

    if (len == 0) return 0;
    i += len;
  }
  return 1;
}

void cli_base64(struct cli_out *o, const void *s, size_t n) {
  static const char b64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *p = s;
  size_t i;

  for (i = 0; i + 3 <= n; i += 3) {
    char q[4] = {b64[p[i] >> 2], b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
                 b64[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)],
                 b64[p[i + 2] & 63]};

    cli_out_write(o, q, sizeof q);
  }
  if (n - i == 1) {
    char q[4] = {b64[p[i] >> 2], b64[(p[i] & 3) << 4], '=', '='};

    cli_out_write(o, q, sizeof q);
  } else if (n - i == 2) {
    char q[4] = {b64[p[i] >> 2], b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
                 b64[(p[i + 1] & 15) << 2], '='};

    cli_out_write(o, q, sizeof q);
  }
}

void cli_json_string(struct cli_out *o, const char *s) {
  cli_out_putc(o, '"');
  cli_json_escape(o, s, strlen(s));
  cli_out_putc(o, '"');
}

void cli_plain_escape(struct cli_out *o, const void *s, size_t n) {
  const unsigned char *p = s;
  size_t i = 0;

  while (i < n) {
    unsigned char c = p[i];
    size_t len;

    if (c >= 0x20 && c < 0x7f && c != '\\') {
      cli_out_putc(o, (char)c);
      i++;
      continue;
    }
    switch (c) {
    case '\\':
      cli_out_write(o, "\\\\", 2);
      i++;
      continue;
    case '\n':
      cli_out_write(o, "\\n", 2);
      i++;
      continue;
    case '\t':
      cli_out_write(o, "\\t", 2);
      i++;
      continue;
    case '\r':
      cli_out_write(o, "\\r", 2);
      i++;
      continue;
    default: break;
    }
    len = c < 0x80 ? 0 : tool_utf8_seq_len(p + i, n - i);
    if (len == 0) {
      put_x(o, c);
      i++;
      continue;
    }
    cli_out_write(o, p + i, len);
    i += len;
  }
}
