"""How the Redis job store lays out its keys, and the Lua scripts that change a job's state atomically across
processes (see `storage.jobs.redis`)."""

from __future__ import annotations

import hashlib

from storage.redis_client import key

QUEUE = key("jobs", "v1", "queue")
ALL = key("jobs", "v1", "all")
QUEUED_SET = key("jobs", "v1", "queued")
RUNNING_SET = key("jobs", "v1", "running")


# What a claim returns of a job (and a finish writes back where a Redis restarted without its data lost the job).
KEPT = ("created_at", "user", "kind", "provider", "request", "image")

# KEYS: job, lease, queued set, running set. ARGV: id, owner, now, lease ms. Returns 0, or the KEPT fields' values.
CLAIM = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'owner', ARGV[2], 'updated_at', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return redis.call('HMGET', KEYS[1], 'created_at', 'user', 'kind', 'provider', 'request', 'image')
"""

# KEYS: job, lease, running set. ARGV: id, owner, then field, value pairs. Returns 1, 0 (no longer running, or
# another's), or -1 (no such job: Redis lost it).
FINISH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""

# KEYS: job, lease, running set. ARGV: id, now, message, message as JSON. A running job whose lease is gone becomes
# interrupted.
REAP_RUNNING = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then
  redis.call('SREM', KEYS[3], ARGV[1])
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'interrupted', 'updated_at', ARGV[2], 'error', ARGV[3], 'error_message', ARGV[4])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""

# KEYS: job, queue, queued set. ARGV: id, now, message, message as JSON. A queued job no longer in the queue was
# lost by a worker.
REAP_QUEUED = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then
  redis.call('SREM', KEYS[3], ARGV[1])
  return 0
end
if redis.call('LPOS', KEYS[2], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'interrupted', 'updated_at', ARGV[2], 'error', ARGV[3], 'error_message', ARGV[4])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""

# KEYS: job, lease. ARGV: owner, lease ms. The lease of a job this process runs, set again even where it is gone (a
# Redis restarted, or hung past its expiry): while the job is running and this owner's, its process is alive.
RENEW = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
"""


def job_key(job_id: str) -> str:
    """The hash of one job."""
    return key("job", "v1", job_id)


def lease_key(job_id: str) -> str:
    """The lease of one running job: its owner, with an expiry."""
    return key("job", "v1", job_id, "lease")


def user_key(user: str) -> str:
    """The listing of one user's jobs."""
    # A digest, so that no key shows who uses the app.
    return key("jobs", "v1", "user", hashlib.sha256(user.encode("utf-8")).hexdigest()[:32])
