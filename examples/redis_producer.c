/*
 * redis_producer: submit tasks to `forkpool bridge` from C, with nothing of
 * forkpool's: only hiredis and the Redis stream commands any client has.
 *
 * Build: make build/examples/redis_producer   (needs libhiredis-dev)
 *   or:  cc -o redis_producer examples/redis_producer.c $(pkg-config
 *        --cflags --libs hiredis)
 * Use:   redis_producer [-h HOST] [-p PORT] [-s STREAM] [TASK...]
 *        (defaults 127.0.0.1, 6379, jobs; tasks "hello", "segv", "fail 7")
 *
 * It notes where the results stream ends, adds each task as an entry
 * `XADD STREAM * data TASK`, then reads the results stream (STREAM:results,
 * the bridge's default) from that point with XREAD BLOCK until every task
 * has its result, matching them by the result's `task` field, which holds
 * the id XADD returned. It prints one line per task, in submission order:
 *
 *   hello	ok	HELLO
 *   segv	crashed	SIGSEGV
 *   fail 7	failed	code=7
 *
 * Exit status: 0 when every task got a result within 30 s, 1 otherwise,
 * 2 for a usage or connection error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#define MAX_TASKS 64
#define WAIT_SECONDS 30

struct task {
  const char *data;
  char id[64];    /* stream id XADD returned */
  char line[512]; /* the result, once seen */
  int done;
};

/* Value of field `name` in a [field, value, ...] reply, or NULL. */
static const redisReply *field(const redisReply *fields, const char *name) {
  size_t i;

  if (fields == NULL || fields->type != REDIS_REPLY_ARRAY) return NULL;
  for (i = 0; i + 1 < fields->elements; i += 2)
    if (fields->element[i]->type == REDIS_REPLY_STRING &&
        strcmp(fields->element[i]->str, name) == 0)
      return fields->element[i + 1];
  return NULL;
}

/* "ok\tOUTPUT", "crashed\tSIGSEGV", "failed\tcode=7", ... */
static void describe(const redisReply *fields, char *buf, size_t len) {
  const redisReply *st = field(fields, "status");
  const redisReply *out = field(fields, "output");
  const redisReply *sig = field(fields, "signal");
  const redisReply *ex = field(fields, "exit");
  const redisReply *code = field(fields, "code");
  const char *status = st ? st->str : "?";

  if (out && strcmp(status, "ok") == 0)
    snprintf(buf, len, "%s\t%.*s", status, (int)out->len, out->str);
  else if (sig) snprintf(buf, len, "%s\t%s", status, sig->str);
  else if (ex) snprintf(buf, len, "%s\texit=%s", status, ex->str);
  else if (code) snprintf(buf, len, "%s\tcode=%s", status, code->str);
  else snprintf(buf, len, "%s", status);
}

int main(int argc, char **argv) {
  static const char *defaults[] = {"hello", "segv", "fail 7"};
  const char *host = "127.0.0.1", *stream = "jobs";
  int port = 6379, ntasks = 0, left, i, rc = 1;
  struct task tasks[MAX_TASKS];
  char results[256], last[64] = "0-0";
  struct timeval tv = {5, 0};
  redisContext *c;
  redisReply *r;
  time_t deadline;

  for (i = 1; i < argc; i++) {
    if (i + 1 < argc && strcmp(argv[i], "-h") == 0) host = argv[++i];
    else if (i + 1 < argc && strcmp(argv[i], "-p") == 0) port = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(argv[i], "-s") == 0) stream = argv[++i];
    else if (ntasks < MAX_TASKS) tasks[ntasks++].data = argv[i];
    else {
      fprintf(stderr, "redis_producer: at most %d tasks\n", MAX_TASKS);
      return 2;
    }
  }
  if (ntasks == 0)
    for (; ntasks < 3; ntasks++) tasks[ntasks].data = defaults[ntasks];
  snprintf(results, sizeof results, "%s:results", stream);

  c = redisConnectWithTimeout(host, port, tv);
  if (c == NULL || c->err) {
    fprintf(stderr, "redis_producer: %s:%d: %s\n", host, port,
            c ? c->errstr : "out of memory");
    return 2;
  }
  redisSetTimeout(c, tv);

  /* Where the results stream ends now: every result of ours comes after. */
  r = redisCommand(c, "XREVRANGE %s + - COUNT 1", results);
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1)
    snprintf(last, sizeof last, "%s", r->element[0]->element[0]->str);
  freeReplyObject(r);

  for (i = 0; i < ntasks; i++) {
    /* %b: binary-safe, length given; the task is any bytes. */
    r = redisCommand(c, "XADD %s * data %b", stream, tasks[i].data,
                     strlen(tasks[i].data));
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
      fprintf(stderr, "redis_producer: XADD: %s\n", r ? r->str : c->errstr);
      goto out;
    }
    snprintf(tasks[i].id, sizeof tasks[i].id, "%s", r->str);
    tasks[i].done = 0;
    freeReplyObject(r);
  }

  left = ntasks;
  deadline = time(NULL) + WAIT_SECONDS;
  while (left > 0 && time(NULL) < deadline) {
    size_t k;

    r = redisCommand(c, "XREAD COUNT 100 BLOCK 1000 STREAMS %s %s", results,
                     last);
    if (r == NULL) {
      fprintf(stderr, "redis_producer: XREAD: %s\n", c->errstr);
      goto out;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
      const redisReply *list = r->element[0]->element[1];

      for (k = 0; k < list->elements; k++) {
        const redisReply *e = list->element[k];
        const redisReply *task = field(e->element[1], "task");

        snprintf(last, sizeof last, "%s", e->element[0]->str);
        for (i = 0; task && i < ntasks; i++)
          if (!tasks[i].done && strcmp(tasks[i].id, task->str) == 0) {
            describe(e->element[1], tasks[i].line, sizeof tasks[i].line);
            tasks[i].done = 1;
            left--;
          }
      }
    }
    freeReplyObject(r);
  }
  for (i = 0; i < ntasks; i++)
    printf("%s\t%s\n", tasks[i].data,
           tasks[i].done ? tasks[i].line : "no result yet");
  rc = left == 0 ? 0 : 1;
out:
  redisFree(c);
  return rc;
}
