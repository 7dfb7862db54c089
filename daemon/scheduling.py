"""Jobs from config on an APScheduler 3 BackgroundScheduler.

Job ids are derived from config (`churn:freshness`, `churn:ingest`, `@host:host`), so a reload diffs the
wanted jobs against the running ones instead of rebuilding everything, and no persistent job store is
needed (jobs are rebuilt from config at every start). Each job runs one instance at a time, coalesces
missed runs into one and may start up to a few seconds late.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger("modeltop.scheduler")

MISFIRE_GRACE_S = 5


@dataclass(frozen=True)
class JobSpec:
    id: str
    interval: float
    func: Callable[[], object] = field(compare=False)
    key: str = ""  # what must change for the job to be replaced on reload (settings, paths)
    executor: str = "default"  # "heavy": the one-thread pool for expensive checks, so they queue behind each other


@dataclass
class JobState:
    last_run: float | None = None
    last_duration_s: float | None = None
    last_error: str | None = None
    runs: int = 0
    missed: int = 0


class Jobs:
    """The scheduler plus the bookkeeping the API shows (last run, duration, error per job)."""

    def __init__(self, workers: int = 4) -> None:
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers), "heavy": ThreadPoolExecutor(1)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": MISFIRE_GRACE_S},
            timezone=UTC,
        )
        self.specs: dict[str, JobSpec] = {}
        self.state: dict[str, JobState] = {}
        self._lock = threading.Lock()
        self.scheduler.add_listener(self._on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def start(self) -> None:
        self.scheduler.start()

    def sync(self, wanted: dict[str, JobSpec]) -> tuple[list[str], list[str], list[str]]:
        """Make the running jobs equal `wanted`; returns (added, replaced, removed) ids."""
        added, replaced, removed = [], [], []
        with self._lock:
            for job_id in list(self.specs):
                if job_id not in wanted:
                    self.scheduler.remove_job(job_id)
                    del self.specs[job_id]
                    self.state.pop(job_id, None)
                    removed.append(job_id)
            for job_id, spec in wanted.items():
                old = self.specs.get(job_id)
                unchanged = old is not None and (old.key, old.interval, old.executor) == (
                    spec.key, spec.interval, spec.executor)
                if unchanged:
                    continue
                first = datetime.now(UTC) + timedelta(seconds=random.uniform(0.05, min(1.0, spec.interval)))
                self.scheduler.add_job(
                    self._timed(job_id, spec.func), "interval", seconds=spec.interval, id=job_id, name=job_id,
                    replace_existing=True, next_run_time=first, executor=spec.executor,
                )
                self.specs[job_id] = spec
                self.state.setdefault(job_id, JobState())
                (replaced if old is not None else added).append(job_id)
        return added, replaced, removed

    def _timed(self, job_id: str, func: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            started = time.perf_counter()
            try:
                return func()
            finally:
                state = self.state.get(job_id)
                if state is not None:
                    state.last_duration_s = time.perf_counter() - started
        return run

    def _on_event(self, event: JobExecutionEvent) -> None:
        state = self.state.get(event.job_id)
        if state is None:
            return
        if event.code == EVENT_JOB_MISSED:
            state.missed += 1
            return
        state.runs += 1
        state.last_run = time.time()
        if event.exception is not None:
            state.last_error = f"{type(event.exception).__name__}: {event.exception}"
            log.error("job %s failed: %s", event.job_id, state.last_error)
        else:
            state.last_error = None

    def shutdown(self, wait: bool) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)

    @property
    def running(self) -> bool:
        return self.scheduler.running
