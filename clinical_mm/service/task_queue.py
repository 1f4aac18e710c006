"""The service's work on several processes and machines: procrastinate, a maintained task queue on PostgreSQL.

Why procrastinate: the service already needs PostgreSQL to share its state between processes, and procrastinate
needs nothing else (no broker to run and secure: Celery would add RabbitMQ or Redis); it keeps its jobs in the
same database, wakes workers with LISTEN/NOTIFY, records each worker's heartbeat, and lets us find the jobs of a
worker that died (``get_stalled_jobs``) and run them again. It is maintained (releases through 2026), on psycopg 3.

How the work is split: the service database stays the record of each study (its state machine, leases, retries,
the deliveries and pulls): procrastinate carries the *work*. Every worker process runs a dispatcher that, every
``poll_s``, enqueues one job per due study, delivery and pull, each under a queueing lock named after it (a second
enqueue of the same item while one waits is refused by the queue, so the dispatchers of several workers make one
job); the job claims its item in the service database (a lease, ``FOR UPDATE SKIP LOCKED``) and runs it, so an item
is worked on by one worker at a time. The dispatcher also retries the jobs of workers whose heartbeat stopped
(killed, or their machine gone): their items' leases are voided and their jobs run again on a live worker. A study
analysed twice (killed half way) makes the same callback events (ids from the study and its result), which are
delivered once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from procrastinate import App, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued

from clinical_mm.service.store import ServiceStore

__all__ = ["TaskQueue"]

_log = logging.getLogger(__name__)
#: the advisory lock key under which one process applies procrastinate's schema
_SCHEMA_LOCK = 0x636D6D7175657565  # "cmmqueue"


class TaskQueue:
    """procrastinate on the service's PostgreSQL (``url``), with the three kinds of work of ``serve``."""

    def __init__(self, url: str, store: ServiceStore) -> None:
        self.url, self.store = url, store
        self.app = App(connector=PsycopgConnector(conninfo=url, min_size=1, max_size=4))
        self._handlers: dict[str, Callable[..., None]] = {}
        self.app.task(name="analyze", queue="analysis", pass_context=False)(self._analyze)
        self.app.task(name="deliver", queue="delivery", pass_context=False)(self._deliver)
        self.app.task(name="pull", queue="pull", pass_context=False)(self._pull)

    def apply_schema(self) -> None:
        """procrastinate's tables, once (the first process to start creates them)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
            try:
                if db.execute("SELECT to_regclass('procrastinate_jobs')").fetchone() == (None,):
                    db.execute(self.app.schema_manager.get_schema())
            finally:
                db.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))

    # ------------------------------------------------------------------ the jobs
    def handle(self, kind: str, handler: Callable[..., None]) -> None:
        """What runs the work of ``kind`` (analyze, deliver, pull) in this process."""
        self._handlers[kind] = handler

    def _analyze(self, study_key: str) -> None:
        self._handlers["analyze"](study_key)

    def _deliver(self, event_id: str, subscriber_id: str) -> None:
        self._handlers["deliver"](event_id, subscriber_id)

    def _pull(self, pull_id: str) -> None:
        self._handlers["pull"](pull_id)

    # ------------------------------------------------------------------ dispatching
    async def dispatch(self, quiet_s: float) -> int:
        """Enqueue a job for each due item that has none waiting; the jobs enqueued."""
        studies, deliveries, pulls = await asyncio.to_thread(self.store.due_work, quiet_s)
        work: list[tuple[str, str, dict[str, Any]]] = [
            *(("analyze", f"study:{k}", {"study_key": k}) for k in studies),
            *(("deliver", f"delivery:{e}:{s}", {"event_id": e, "subscriber_id": s}) for e, s in deliveries),
            *(("pull", f"pull:{p}", {"pull_id": p}) for p in pulls)]
        enqueued = 0
        for name, lock, kwargs in work:
            try:
                await self.app.tasks[name].configure(queueing_lock=lock).defer_async(**kwargs)
                enqueued += 1
            except AlreadyEnqueued:
                pass
        return enqueued

    async def retry_stalled(self, stalled_s: float) -> int:
        """Run again the jobs of workers whose heartbeat stopped ``stalled_s`` seconds ago; their items' leases are
        voided first. The jobs retried."""
        retried = 0
        for job in await self.app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_s):
            args = job.task_kwargs
            key: tuple[str, ...]
            if job.task_name == "analyze":
                kind, key = "study", (str(args["study_key"]),)
            elif job.task_name == "deliver":
                kind, key = "delivery", (str(args["event_id"]), str(args["subscriber_id"]))
            else:
                kind, key = "pull", (str(args["pull_id"]),)
            await asyncio.to_thread(self.store.release_lease, kind, key)
            await self.app.job_manager.retry_job(job)
            _log.warning("job %s (%s) of a worker that stopped: run again", job.id, job.task_name)
            retried += 1
        return retried

    async def dispatcher(self, quiet_s: float, poll_s: float = 1.0, stalled_s: float = 15.0) -> None:
        """Every ``poll_s``: enqueue due work, retry stalled jobs; until cancelled."""
        while True:
            try:
                await self.dispatch(quiet_s)
                await self.retry_stalled(stalled_s)
            except Exception as exc:  # noqa: BLE001 - the database may be briefly away; the next round tries again
                _log.warning("dispatcher: %s", exc.__class__.__name__)
            await asyncio.sleep(poll_s)

    def run_worker(self, quiet_s: float, *, poll_s: float = 1.0, stalled_s: float = 15.0,
                   heartbeat_s: float = 2.0, install_signal_handlers: bool = True) -> None:
        """Run this process's worker (the three queues, one job at a time) and its dispatcher until SIGINT or
        SIGTERM; a job in hand is finished first."""
        async def main() -> None:
            async with self.app.open_async():
                dispatcher = asyncio.create_task(self.dispatcher(quiet_s, poll_s, stalled_s))
                try:
                    await self.app.run_worker_async(queues=["analysis", "delivery", "pull"], concurrency=1,
                                                    update_heartbeat_interval=heartbeat_s,
                                                    stalled_worker_timeout=stalled_s,
                                                    install_signal_handlers=install_signal_handlers)
                finally:
                    dispatcher.cancel()

        asyncio.run(main())
