/*
 * Splitting a byte stream (stdin) into delimited records without blocking.
 *
 * A record is the bytes up to a delimiter ('\n' or '\0'), the delimiter not
 * included. A final record without a delimiter still counts; an empty
 * stream has no records; an empty line is an empty record. A record longer
 * than `max_len` is not kept: its bytes are counted and dropped as they
 * arrive, so memory stays bounded by max_len plus one read, and the record
 * is reported as oversized with its full length.
 */
#ifndef FORKPOOL_CLI_INPUT_H
#define FORKPOOL_CLI_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct cli_input {
  int fd;
  int delim;
  int eof; /* read() returned 0 */
  size_t max_len;
  char *buf;
  size_t cap;
  size_t start, end; /* unconsumed bytes are buf[start..end) */
  size_t scan;       /* buf[start..scan) is known to hold no delimiter */
  uint64_t dropped;  /* bytes of an oversized record dropped so far */
  int dropping;      /* the current record is oversized */
  size_t taken;      /* bytes cli_input_consume() will drop, 0 if none */
  char **args;       /* list mode: the records, no fd (see below) */
  size_t nargs, argi;
};

struct cli_record {
  const char *data; /* valid until the next cli_input_consume/fill */
  size_t len;
  int oversize; /* data is NULL; full_len holds the length */
  uint64_t full_len;
};

#define CLI_INPUT_RECORD 1 /* a record is ready */
#define CLI_INPUT_MORE 0   /* need more bytes: call cli_input_fill() */
#define CLI_INPUT_END (-1) /* the stream ended and every record was taken */

/* Set up a reader on fd. Returns 0 or -ENOMEM. */
int cli_input_init(struct cli_input *in, int fd, int delim, size_t max_len);

/*
 * Set up a reader whose records are the n strings args[0..n) (command-line
 * arguments; they must outlive the reader). It never returns
 * CLI_INPUT_MORE, so cli_input_fill() is never needed. Always succeeds.
 */
void cli_input_init_args(struct cli_input *in, char **args, size_t n,
                         size_t max_len);

void cli_input_free(struct cli_input *in);

/*
 * Look at the next record without taking it: returns CLI_INPUT_RECORD with
 * *rec filled in, CLI_INPUT_MORE or CLI_INPUT_END. Calling it again before
 * cli_input_consume() yields the same record, which is how a record waits
 * for a free queue slot.
 */
int cli_input_next(struct cli_input *in, struct cli_record *rec);

/* Take the record cli_input_next() returned last. */
void cli_input_consume(struct cli_input *in);

/*
 * Wait up to timeout_ms (0: do not wait) for fd to be readable, then read
 * once. Returns 1 when bytes arrived or the stream ended, 0 when nothing was
 * ready (or a signal interrupted the wait), or a negative errno. Call only
 * after cli_input_next() returned CLI_INPUT_MORE.
 */
int cli_input_fill(struct cli_input *in, int timeout_ms);

#endif /* FORKPOOL_CLI_INPUT_H */
