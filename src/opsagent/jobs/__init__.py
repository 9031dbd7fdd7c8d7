"""The investigation queue. A job accepted is never lost.

The database is the queue's durable state: an investigation row is ``queued`` when accepted,
``running`` with a lease while a worker has it, then ``done`` or ``failed``. A worker renews its
lease while the pipeline runs; a worker that dies stops renewing, and once the lease expires any
process hands the job to another worker (``requeue_expired``). Claiming is one conditional UPDATE,
so a job delivered twice (a re-enqueue racing a slow worker) still runs once at a time.

- ``ProcessQueue`` (default, ``worker_mode = "process"``): the API process spawns
  ``worker_processes`` worker processes, supervises them (a dead one is restarted, with backoff) and
  stops them at shutdown. Each builds its services once and runs a ``LocalQueue`` of ``workers``
  threads at a lower OS priority, so investigations never hold the API's GIL and yield the CPU to the
  webhook. The API only wakes them (a byte on a pipe, a hint: they also poll the database) and
  receives one small report per finished job for its metrics.
- ``LocalQueue`` (``worker_mode = "thread"``): a fixed pool of threads in the API process claims
  jobs straight from the database, so concurrency is bounded and a backlog waits in the database,
  not in memory. Several API processes on one PostgreSQL share the backlog (``FOR UPDATE SKIP LOCKED``).
- ``RedisQueue`` (``OPSAGENT_REDIS_URL``): job ids go to an rq queue and ``opsagent worker``
  processes, on any machine, run them. Redis carries only the wake-up; the database stays the
  record, so a lost Redis message is recovered from it at start-up and by the lease reaper.
"""

from opsagent.jobs.job import JobCallback, JobReport, Runner, worker_name
from opsagent.jobs.process_queue import ProcessQueue
from opsagent.jobs.queue import JobQueue, build_queue
from opsagent.jobs.redis_queue import RedisQueue, run_worker
from opsagent.jobs.thread_queue import LocalQueue

__all__ = [
    "JobCallback",
    "JobQueue",
    "JobReport",
    "LocalQueue",
    "ProcessQueue",
    "RedisQueue",
    "Runner",
    "build_queue",
    "run_worker",
    "worker_name",
]
