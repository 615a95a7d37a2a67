"""The Lua scripts the backplane runs in Redis: each one atomic, so servers never race.

``PUBLISH`` gives each room op its room's next ``seq``, keeps who is where (the
names, one server each; the rooms' members) and appends the batch to the stream,
all in one step: the stream's order is the order of every ``seq``, and a name is
given to one server at a time. A retried batch (the reply was lost, not the call)
is dropped by its number. Keys are ``PREFIX`` + a fixed name, or ``room:`` + a
room: one Redis (not Redis Cluster), whose ``db`` in the URL separates clusters.
"""

from __future__ import annotations

#: ARGV: prefix, origin, batch number, announce limit, stream length, batch, then the
#: five fields of each op (``ops.OpArgs``) as one JSON array of arrays: one argument,
#: not five per op, as redis-py packs each argument in Python (docs/design.md, "One JSON
#: argument"). Each op's result (a seq, 0: none, -1: refused, or for a nick one seq per
#: room joined by ``;``) goes into the stream entry; the call returns the entry's id.
PUBLISH = """
local p, origin = ARGV[1], ARGV[2]
local counter, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local last = tonumber(redis.call('HGET', p..'origins', origin) or '0')
if counter <= last then return {'dup'} end
redis.call('HSET', p..'origins', origin, counter)
local function server_of(value) return string.match(value, '^(%S+)') end
local function live_elsewhere(value, server)
  if not value or server_of(value) == server then return false end
  return redis.call('EXISTS', p..'alive:'..server_of(value)) == 1
end
local function next_seq(room) return redis.call('HINCRBY', p..'seq', room, 1) end
-- A room's members: name key -> "server name"; a part is only its own server's (a
-- name taken over on another server stays).
local function enter(room, key, name, server)
  redis.call('HSET', p..'room:'..room, key, server..' '..name)
  redis.call('SADD', p..'rooms', room)
  return redis.call('HLEN', p..'room:'..room)
end
local function go(room, key, server)
  local n = redis.call('HLEN', p..'room:'..room)
  local current = redis.call('HGET', p..'room:'..room, key)
  if not current or server_of(current) ~= server then return 0, n end
  redis.call('HDEL', p..'room:'..room, key)
  if n <= 1 then redis.call('SREM', p..'rooms', room) end
  return 1, n
end
local results = {}
local fields = cjson.decode(ARGV[7])
for i = 1, #fields do
  local kind, room, key, name, server = unpack(fields[i])
  local result = 0
  if kind == 'm' then
    result = next_seq(room)
  elseif kind == 'J' then  -- told again after a gap: only if the name is still ours
    local current = redis.call('HGET', p..'users', key)
    if current and server_of(current) == server then
      enter(room, key, name, server)
      result = 1  -- not a seq: it was entered (0: the name is someone else's now)
    end
  elseif kind == 'j' then
    local n = enter(room, key, name, server)
    if n <= limit then result = next_seq(room) end
  elseif kind == 'p' then
    local gone, n = go(room, key, server)
    if gone == 1 and n <= limit then result = next_seq(room) end
  elseif kind == 'o' or kind == 'O' then
    local current = redis.call('HGET', p..'users', key)
    if kind == 'o' and live_elsewhere(current, server) then result = -1
    else redis.call('HSET', p..'users', key, name) end
  elseif kind == 'x' then
    local current = redis.call('HGET', p..'users', key)
    if current and server_of(current) == server then
      redis.call('HDEL', p..'users', key)
      redis.call('HDEL', p..'away', key)
    end
  elseif kind == 'n' then
    local newkey, newname = string.match(name, '^(%S+) (%S+)$')
    local current = redis.call('HGET', p..'users', newkey)
    local me = string.match(server, '^(%S+)')
    if newkey ~= key and live_elsewhere(current, me) then result = -1
    else
      local value = redis.call('HGET', p..'users', key)
      local flag = value and string.match(value, '(%S+)$') or 'c'
      redis.call('HDEL', p..'users', key)
      redis.call('HSET', p..'users', newkey, me..' '..newname..' '..flag)
      local away = redis.call('HGET', p..'away', key)
      if away then
        redis.call('HDEL', p..'away', key)
        redis.call('HSET', p..'away', newkey, away)
      end
      local seqs = {}
      for r in string.gmatch(room, '[^\\n]+') do
        local gone, n = go(r, key, me)
        enter(r, newkey, newname, me)
        if n <= limit then table.insert(seqs, next_seq(r)) else table.insert(seqs, 0) end
      end
      result = #seqs > 0 and table.concat(seqs, ';') or '0'  -- in no room: no seq
    end
  elseif kind == 'a' then
    if name == '' then redis.call('HDEL', p..'away', key)
    else redis.call('HSET', p..'away', key, name) end
  end
  table.insert(results, tostring(result))
end
local id = redis.call('XADD', p..'stream', 'MAXLEN', '~', ARGV[5], '*',
  'o', origin, 'b', ARGV[6], 's', table.concat(results, ','))
return id
"""

#: ARGV: prefix, a new epoch (kept if there is none), this server's identity (the
#: cluster's, if there is none yet). Returns the stream's last id, the epoch, then the
#: users, away texts, rooms with their members, and seqs, each as Redis returns a hash
#: (flat name, value lists), all as of that last id, and the cluster's identity.
SNAPSHOT = """
local p = ARGV[1]
local last = redis.call('XREVRANGE', p..'stream', '+', '-', 'COUNT', 1)
local id = '0-0'
if #last > 0 then id = last[1][1] end
local epoch = redis.call('GET', p..'epoch')
if not epoch then epoch = ARGV[2]; redis.call('SET', p..'epoch', epoch) end
local cluster = redis.call('GET', p..'cluster')
if not cluster then cluster = ARGV[3]; redis.call('SET', p..'cluster', cluster) end
local rooms = {}
for _, room in ipairs(redis.call('SMEMBERS', p..'rooms')) do
  table.insert(rooms, room)
  table.insert(rooms, redis.call('HGETALL', p..'room:'..room))
end
return {id, epoch, redis.call('HGETALL', p..'users'), redis.call('HGETALL', p..'away'),
  rooms, redis.call('HGETALL', p..'seq'), cluster}
"""

#: ARGV: prefix, then room, seq pairs: each room's counter is raised to at least that
#: (a server's own history, or a Redis that lost its data, never makes a seq reused).
SEED = """
local p = ARGV[1]
for i = 2, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', p..'seq', ARGV[i]) or '0')
  if current < tonumber(ARGV[i+1]) then redis.call('HSET', p..'seq', ARGV[i], ARGV[i+1]) end
end
return 1
"""

#: ARGV: prefix, origin, time to live (ms). Returns 1 if the others had given this
#: server up for dead (its people were taken out: it must tell Redis of them again).
HEARTBEAT = """
local p = ARGV[1]
redis.call('SET', p..'alive:'..ARGV[2], '1', 'PX', ARGV[3])
return redis.call('DEL', p..'reaped:'..ARGV[2])
"""

#: ARGV: prefix, a server's origin, announce limit, stream length, the time. If that
#: server's heartbeat key is gone, takes its people out, all in this one step: each of
#: its rooms' members goes (a ``seq`` while the room is announced), each of its names
#: is freed, and one stream entry (from ``reaper``) says so, as ops the servers read as
#: their own kind. Returns how many names were freed (0: alive, or nobody there).
REAP = """
local p, server, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', p..'alive:'..server) == 1 then return 0 end
local function server_of(value) return string.match(value, '^(%S+)') end
local t = tonumber(ARGV[5])
local ops, results, freed = {}, {}, 0
for _, room in ipairs(redis.call('SMEMBERS', p..'rooms')) do
  local members = redis.call('HGETALL', p..'room:'..room)
  for i = 1, #members, 2 do
    local key, value = members[i], members[i+1]
    if server_of(value) == server then
      local n = redis.call('HLEN', p..'room:'..room)
      redis.call('HDEL', p..'room:'..room, key)
      if n <= 1 then redis.call('SREM', p..'rooms', room) end
      local seq = 0
      if n <= limit then seq = redis.call('HINCRBY', p..'seq', room, 1) end
      local name = string.match(value, '^%S+ (%S+)')
      table.insert(ops, cjson.encode({'p', room, name, t, true, 'server_gone', server}))
      table.insert(results, tostring(seq))
    end
  end
end
local users = redis.call('HGETALL', p..'users')
for i = 1, #users, 2 do
  local key, value = users[i], users[i+1]
  if server_of(value) == server then
    redis.call('HDEL', p..'users', key)
    redis.call('HDEL', p..'away', key)
    table.insert(ops, cjson.encode({'x', string.match(value, '^%S+ (%S+)'), server}))
    table.insert(results, '0')
    freed = freed + 1
  end
end
redis.call('SET', p..'reaped:'..server, '1', 'EX', 3600)
redis.call('HDEL', p..'origins', server)
if #ops > 0 then
  redis.call('XADD', p..'stream', 'MAXLEN', '~', ARGV[4], '*', 'o', 'reaper',
    'b', '['..table.concat(ops, ',')..']', 's', table.concat(results, ','))
end
return freed
"""
