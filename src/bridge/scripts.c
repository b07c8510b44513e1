/*
 * The Lua scripts the bridge runs in Redis (EVALSHA; loaded with SCRIPT
 * LOAD at every connection, since a restarted Redis forgets them).
 *
 * Why scripts. Redis runs a script atomically: no other command runs
 * between its calls. Every decision the bridge makes about an entry's fate
 * reads the group's pending list (PEL) and changes it in the same breath,
 * which MULTI/EXEC cannot do (a transaction cannot branch on what it
 * reads, and WATCH does not cover a PEL change).
 *
 * The invariant: an entry gets a result (or a dead letter) only from the
 * consumer that owns it in the PEL at that instant, and the same script
 * acknowledges it. So:
 *
 *   - "written but not acked" cannot happen: XADD result and XACK are one
 *     step. A bridge killed before the script ran leaves the entry pending
 *     (it is redone elsewhere); killed after, the entry is done. No third
 *     state.
 *   - Two bridges cannot both write. Bridge A is slow (stalled, cut off
 *     from Redis, stopped); after --claim-idle B claims A's entry: the PEL
 *     now names B. Both finish: A's write script sees the owner is B and
 *     writes nothing (A logs it and counts it "dropped"); B's script finds
 *     itself owner and writes. If A finished first, its script wrote and
 *     acked, the entry left the PEL, and B can no longer claim it. A claim
 *     and a write are scripts too, so one of the two orders happened.
 *   - A retried write is harmless: when a connection breaks after Redis ran
 *     a write but before the bridge read the answer, the retry finds the
 *     entry acked (not pending) and writes nothing.
 *
 * So each entry ends with exactly one result or one dead letter, while the
 * handler itself may run more than once (at-least-once execution): a
 * bridge may die after the pool ran the task and before the script.
 *
 * Delivery counts are Redis's own PEL counters: XREADGROUP > sets 1, every
 * XCLAIM (without JUSTID) adds one. The heartbeat uses XCLAIM ... JUSTID,
 * which resets the idle time without counting a delivery, and only for
 * entries the bridge still owns: a plain XCLAIM there would steal an entry
 * back from a bridge that legitimately claimed it.
 *
 * Needs Redis 6.2 or later (XPENDING IDLE, exclusive "(" ranges).
 * In Redis Cluster the scripts touch the task stream together with the
 * results or dead-letter stream: give them one hash tag ({jobs}, {jobs}:r).
 */
#include "bridge.h"

/*
 * claim: KEYS = stream, dead-letter stream
 *        ARGV = group, me, min_idle_ms, start, count, max_deliveries,
 *               host, only_consumer ("" = any)
 * Looks at up to `count` PEL entries from `start` idle >= min_idle (of
 * `only_consumer` when given) and claims each to `me`. An entry whose
 * delivery count, this claim included, is above max_deliveries is not
 * returned: it is appended to the dead-letter stream with its history and
 * its data, and acked. An entry deleted from the stream (XDEL, trimming)
 * has nothing to run: XCLAIM drops it from the PEL (Redis 7; we XACK it
 * for 6.2, a no-op on 7) and it is skipped.
 * Returns { cursor, { dead ids }, { { id, deliveries, prev_owner, idle,
 * fields }, ... } }, cursor "" when the scan reached the end of the PEL,
 * else "(<last id>" to continue from.
 */
static const char claim_lua[] =
    "local stream, dead = KEYS[1], KEYS[2]\n"
    "local group, me = ARGV[1], ARGV[2]\n"
    "local min_idle, start, count = tonumber(ARGV[3]), ARGV[4], "
    "tonumber(ARGV[5])\n"
    "local max_del, host, only = tonumber(ARGV[6]), ARGV[7], ARGV[8]\n"
    "local pel\n"
    "if only ~= '' then\n"
    "  pel = redis.call('XPENDING', stream, group, 'IDLE', min_idle, start, "
    "'+', count, only)\n"
    "else\n"
    "  pel = redis.call('XPENDING', stream, group, 'IDLE', min_idle, start, "
    "'+', count)\n"
    "end\n"
    "local cursor = ''\n"
    "if #pel >= count then cursor = '(' .. pel[#pel][1] end\n"
    "local dead_ids, out = {}, {}\n"
    "for _, p in ipairs(pel) do\n"
    "  local id, owner, idle, n = p[1], p[2], p[3], p[4] + 1\n"
    "  local got = redis.call('XCLAIM', stream, group, me, min_idle, id)\n"
    "  local e = got[1]\n"
    "  if type(e) ~= 'table' or type(e[2]) ~= 'table' then\n"
    "    redis.call('XACK', stream, group, id)\n"
    "  elseif n > max_del then\n"
    "    local f = { dead, '*', 'task', id, 'reason', 'max-deliveries',\n"
    "                'deliveries', n - 1, 'last_consumer', owner,\n"
    "                'idle_ms', idle, 'dead_by', me, 'host', host }\n"
    "    local fields = e[2]\n"
    "    for i = 1, #fields - 1, 2 do\n"
    "      if fields[i] == 'data' then\n"
    "        f[#f + 1] = 'data'; f[#f + 1] = fields[i + 1]\n"
    "      end\n"
    "    end\n"
    "    redis.call('XADD', unpack(f))\n"
    "    redis.call('XACK', stream, group, id)\n"
    "    dead_ids[#dead_ids + 1] = id\n"
    "  else\n"
    "    out[#out + 1] = { id, n, owner, idle, e[2] }\n"
    "  end\n"
    "end\n"
    "return { cursor, dead_ids, out }\n";

/*
 * heartbeat: KEYS = stream; ARGV = group, me, id...
 * Resets the idle time of each id still pending for `me` (XCLAIM JUSTID:
 * no delivery counted). Returns the ids that are not (lost).
 */
static const char heartbeat_lua[] =
    "local mine, lost = {}, {}\n"
    "for i = 3, #ARGV do\n"
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], "
    "1)\n"
    "  if p[1] and p[1][2] == ARGV[2] then\n"
    "    mine[#mine + 1] = ARGV[i]\n"
    "  else\n"
    "    lost[#lost + 1] = ARGV[i]\n"
    "  end\n"
    "end\n"
    "if #mine > 0 then\n"
    "  local a = { KEYS[1], ARGV[1], ARGV[2], 0 }\n"
    "  for _, id in ipairs(mine) do a[#a + 1] = id end\n"
    "  a[#a + 1] = 'JUSTID'\n"
    "  redis.call('XCLAIM', unpack(a))\n"
    "end\n"
    "return lost\n";

/*
 * write: KEYS = stream, target stream (results or dead-letter)
 *        ARGV = group, me, id, field, value, ...
 * If `id` is pending for `me`: XADD target * task <id> <fields...>
 * deliveries <n>, then XACK; returns 1. Otherwise does nothing and
 * returns 0 (claimed by another bridge, or already acknowledged).
 * XADD comes first: if it fails (wrong type, out of memory) the script
 * stops with the error before the XACK, and the entry stays pending.
 */
static const char write_lua[] =
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)\n"
    "if not p[1] or p[1][2] ~= ARGV[2] then return 0 end\n"
    "local f = { KEYS[2], '*', 'task', ARGV[3] }\n"
    "for i = 4, #ARGV do f[#f + 1] = ARGV[i] end\n"
    "f[#f + 1] = 'deliveries'; f[#f + 1] = p[1][4]\n"
    "redis.call('XADD', unpack(f))\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])\n"
    "return 1\n";

/*
 * retire: KEYS = stream; ARGV = group, me
 * Deletes consumer `me` when nothing is pending for it (DELCONSUMER would
 * otherwise drop its pending entries). Returns 1 when deleted.
 */
static const char retire_lua[] =
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])\n"
    "if #p > 0 then return 0 end\n"
    "redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])\n"
    "return 1\n";

const char *const bridge_scripts[SCRIPT_COUNT] = {
    claim_lua,
    heartbeat_lua,
    write_lua,
    retire_lua,
};

const char *const bridge_script_names[SCRIPT_COUNT] = {
    "claim",
    "heartbeat",
    "write",
    "retire",
};
