/*
 * Delimited record reader over poll(2) + read(2).
 *
 * stdin is never switched to O_NONBLOCK: that flag lives on the open file
 * description, which the shell and other processes share. poll() first and
 * a single read() after it is enough: read() on a readable pipe, tty or
 * socket returns what is there without waiting, and regular files are
 * always readable.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "input.h"

#define READ_CHUNK (64u * 1024u)

int cli_input_init(struct cli_input *in, int fd, int delim, size_t max_len) {
  memset(in, 0, sizeof *in);
  in->fd = fd;
  in->delim = delim;
  in->max_len = max_len;
  in->cap = READ_CHUNK;
  in->buf = malloc(in->cap);
  return in->buf ? 0 : -ENOMEM;
}

void cli_input_init_args(struct cli_input *in, char **args, size_t n,
                         size_t max_len) {
  memset(in, 0, sizeof *in);
  in->fd = -1;
  in->eof = 1;
  in->max_len = max_len;
  in->args = args;
  in->nargs = n;
}

void cli_input_free(struct cli_input *in) {
  free(in->buf);
  in->buf = NULL;
}

/* cli_input_next() in list mode. */
static int next_arg(struct cli_input *in, struct cli_record *rec) {
  if (in->argi >= in->nargs) return CLI_INPUT_END;
  rec->len = strlen(in->args[in->argi]);
  rec->full_len = rec->len;
  rec->oversize = rec->len > in->max_len;
  rec->data = rec->oversize ? NULL : in->args[in->argi];
  return CLI_INPUT_RECORD;
}

int cli_input_next(struct cli_input *in, struct cli_record *rec) {
  char *d;

  if (in->args) return next_arg(in, rec);
  d = memchr(in->buf + in->scan, in->delim, in->end - in->scan);
  if (!d) {
    in->scan = in->end;
    if (in->end - in->start > in->max_len) {
      /* Over the limit without a delimiter: the record cannot be submitted
       * whatever follows, so drop what we hold and keep only a count. */
      in->dropped += in->end - in->start;
      in->dropping = 1;
      in->start = in->end = in->scan = 0;
    }
    if (!in->eof) return CLI_INPUT_MORE;
    if (in->start == in->end && !in->dropping) return CLI_INPUT_END;
    /* the last record has no delimiter */
    rec->len = in->end - in->start;
    in->taken = rec->len;
  } else {
    rec->len = (size_t)(d - (in->buf + in->start));
    in->taken = rec->len + 1;
  }
  if (in->dropping || rec->len > in->max_len) {
    rec->oversize = 1;
    rec->full_len = in->dropped + rec->len;
    rec->data = NULL;
  } else {
    rec->oversize = 0;
    rec->full_len = rec->len;
    rec->data = in->buf + in->start;
  }
  return CLI_INPUT_RECORD;
}

void cli_input_consume(struct cli_input *in) {
  if (in->args) {
    in->argi++;
    return;
  }
  in->start += in->taken;
  in->taken = 0;
  if (in->scan < in->start) in->scan = in->start;
  in->dropping = 0;
  in->dropped = 0;
  if (in->start == in->end) in->start = in->end = in->scan = 0;
}

/*
 * Make room for one more read: move the partial record to the front, then
 * grow when it still leaves less than a chunk free. The partial record is at
 * most max_len bytes (next() drops longer ones), so the buffer never grows
 * past max_len + READ_CHUNK. Returns 0 or -ENOMEM.
 */
static int make_room(struct cli_input *in) {
  size_t used = in->end - in->start;

  if (in->cap - in->end >= READ_CHUNK) return 0;
  if (in->start > 0) {
    memmove(in->buf, in->buf + in->start, used);
    in->scan -= in->start;
    in->end = used;
    in->start = 0;
  }
  if (in->cap - in->end < READ_CHUNK) {
    size_t ncap = in->cap * 2;
    char *nb;

    if (ncap < in->end + READ_CHUNK) ncap = in->end + READ_CHUNK;
    nb = realloc(in->buf, ncap);
    if (!nb) return -ENOMEM;
    in->buf = nb;
    in->cap = ncap;
  }
  return 0;
}

int cli_input_fill(struct cli_input *in, int timeout_ms) {
  struct pollfd pfd = {.fd = in->fd, .events = POLLIN};
  ssize_t n;
  int r;

  if (in->eof) return 1;
  r = poll(&pfd, 1, timeout_ms);
  if (r < 0) return errno == EINTR ? 0 : -errno;
  if (r == 0) return 0;
  /* POLLHUP/POLLERR/POLLNVAL: let read() tell EOF from an error. */
  r = make_room(in);
  if (r < 0) return r;
  n = read(in->fd, in->buf + in->end, in->cap - in->end);
  if (n < 0) {
    /* EINTR: the caller's loop checks its signal flag and calls again.
     * EAGAIN: someone else made the fd non-blocking; poll() told a lie
     * (another reader took the bytes): nothing is ready after all. */
    if (errno == EINTR || errno == EAGAIN) return 0;
    return -errno;
  }
  if (n == 0) in->eof = 1;
  in->end += (size_t)n;
  return 1;
}
