-- The append (src/cluster/log.rs): number a room's lines and store them, in one atomic step,
-- at most once per token.
--
-- KEYS[1] the room's counter, KEYS[2] its stream, KEYS[3] its last-append record (a HASH:
-- writer node -> "epoch:n:first:count"). ARGV[1] the writer node, ARGV[2] its epoch, ARGV[3]
-- the append's number in that run (n), ARGV[4..] the lines, in order.
--
-- Returns the first line's number; the others follow it without a gap. The same token again
-- (a retry whose first answer was lost) appends nothing and returns the number it got the
-- first time. Errors, appending nothing:
--   STALE   the record holds a later append of the same run: this token's lines may or may
--           not be in the log, and its numbers are no longer known;
--   FENCED  the record holds a later run of the node: this run must not write any more;
--   TOKEN   the same token came with another number of lines (a bug of the caller).
local node, epoch, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local count = #ARGV - 3
local record = redis.call('HGET', KEYS[3], node)
if record then
    local e, m, first, c = string.match(record, '^(%d+):(%d+):(%d+):(%d+)$')
    e, m = tonumber(e), tonumber(m)
    if e and e > epoch then
        return redis.error_reply('FENCED run ' .. e .. ' of node ' .. node ..
            ' appends to this room; run ' .. epoch .. ' may not')
    end
    if e == epoch then
        if m == n then
            if tonumber(c) ~= count then
                return redis.error_reply('TOKEN append ' .. n .. ' came with ' .. c ..
                    ' lines, now with ' .. count)
            end
            return tonumber(first)
        end
        if m > n then
            return redis.error_reply('STALE append ' .. n .. ' of node ' .. node ..
                ' is older than its append ' .. m .. ' already in the log')
        end
    end
end
-- A counter behind its stream's last number (an engine restored from an older file, a
-- hand-made mistake) is moved up to it first, so no number is handed out twice.
if redis.call('EXISTS', KEYS[2]) == 1 then
    local info = redis.call('XINFO', 'STREAM', KEYS[2])
    for i = 1, #info, 2 do
        if info[i] == 'last-generated-id' then
            local top = tonumber(string.match(info[i + 1], '^(%d+)'))
            if top > tonumber(redis.call('GET', KEYS[1]) or '0') then
                redis.call('SET', KEYS[1], top)
            end
        end
    end
end
local last = redis.call('INCRBY', KEYS[1], count)
local first = last - count + 1
for i = 4, #ARGV do
    redis.call('XADD', KEYS[2], string.format('%d-0', first + i - 4), 'line', ARGV[i])
end
redis.call('HSET', KEYS[3], node, string.format('%s:%s:%d:%d', ARGV[2], ARGV[3], first, count))
return first
