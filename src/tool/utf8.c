/*
 * UTF-8 well-formedness. The check follows the table of well-formed
 * sequences in the Unicode standard (chapter 3, table 3-7), which rules out
 * overlong forms, UTF-16 surrogates and code points above U+10FFFF.
 */
#include "utf8.h"

size_t tool_utf8_seq_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the 2nd byte */
  size_t len, i;

  if (c < 0x80) return 1;
  if (c < 0xc2) return 0; /* continuation byte, or overlong 2-byte lead */
  if (c < 0xe0) {
    len = 2;
  } else if (c < 0xf0) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;      /* overlong */
    else if (c == 0xed) hi = 0x9f; /* surrogates */
  } else if (c < 0xf5) {
    len = 4;
    if (c == 0xf0) lo = 0x90;      /* overlong */
    else if (c == 0xf4) hi = 0x8f; /* above U+10FFFF */
  } else {
    return 0;
  }
  if (n < len) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xbf) return 0;
  return len;
}
