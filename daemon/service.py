"""The daemon process: config, store, scheduled jobs, the API, signals and systemd notification.

Threads: the asyncio loop on the main thread serves the API and handles signals; APScheduler's pool runs
ingest and checks; API handlers hand database work to a small pool of their own, so a heavy ad-hoc query
never takes a monitoring thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import checks
from checks.base import Status
from daemon import __doc__ as _  # noqa: F401  (keeps `daemon` import-light: nothing heavy in __init__)
from daemon.api.server import ApiServer
from daemon.config import HOST_SCOPE, Config, ConfigError, ModelConfig, load_config
from daemon.ingest import IngestReport, SpoolReader, ensure_spools, spool_dirs
from daemon.ingest.meter import IngestMeter
from daemon.ingest.schema import with_reference_features
from daemon.inputs import InputContext
from daemon.notify import Notifier, watchdog_interval
from daemon.runner import run_check
from daemon.scheduling import Jobs, JobSpec
from daemon.sources.host import HostSampler, model_paths
from daemon.store import queries, retention
from daemon.store.db import Store, ensure_model_tables

log = logging.getLogger("modeltop.daemon")

HEARTBEAT_JOB = "_heartbeat"
RETENTION_JOB = "_retention"
RETENTION_TICK_S = 300.0  # the job wakes this often and purges when due: first ~5 min after start
RETENTION_EVERY_S = 3600.0


class Daemon:
    def __init__(self, config_path: Path, state_dir: Path | None = None) -> None:
        self.config_path = config_path
        self.state_dir_override = state_dir
        self.config: Config = load_config(config_path, state_dir)
        self.started = time.time()
        self.notifier = Notifier()
        self.jobs = Jobs()
        self.host = HostSampler(self.config.daemon.state_dir, extra_paths=model_paths(self.config.models))
        self.api_pool = ThreadPoolExecutor(4, thread_name_prefix="api")
        self.readers: dict[str, SpoolReader] = {}
        self.meters: dict[str, IngestMeter] = {}
        # One poll of a model's spools at a time: the scheduled ingest job and HTTP ingest both take it
        # (re-entrant: HTTP ingest holds it across rename and poll, and polls through poll_spools).
        self._ingest_locks: dict[str, threading.RLock] = {}
        self._ingest_locks_guard = threading.Lock()
        self._retention_due = time.monotonic() + 180.0
        self.reloads = 0
        self.last_reload_error: str | None = None
        self.last_heartbeat = time.monotonic()
        self.store: Store | None = None
        self._stop: asyncio.Event | None = None
        self.stopping = threading.Event()  # set at SIGTERM: long API work (a backfill) stops between steps

    # -- life cycle ---------------------------------------------------------------------------

    def run(self) -> int:
        return asyncio.run(self._serve())

    async def _serve(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        settings = self.config.daemon
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        for model in self.config.models:
            ensure_spools(model)
        self.store = await loop.run_in_executor(None, Store, settings.database, data_directories(self.config))
        if self.store.applied:
            log.info("store %s migrated to schema version %d", settings.database, self.store.applied[-1])
        self.config = await loop.run_in_executor(None, self._register_models, self.config)
        self.jobs.start()
        self.jobs.sync(self._wanted_jobs(self.config))
        api = ApiServer(self)
        await api.start(settings.socket)
        for sig, handler in ((signal.SIGTERM, self.stop), (signal.SIGINT, self.stop),
                             (signal.SIGHUP, lambda: loop.create_task(self.reload()))):
            loop.add_signal_handler(sig, handler)
        log.info("modeltop daemon ready: %d models, %d jobs, API on %s",
                 len(self.config.models), len(self.jobs.specs), settings.socket)
        self.notifier.send(READY=1, STATUS=self.summary())
        ticker = loop.create_task(self._tick())
        await self._stop.wait()
        self.notifier.send(STOPPING=1, STATUS="stopping")
        log.info("stopping: draining jobs (up to %.0fs)", settings.shutdown_timeout)
        ticker.cancel()
        self.store.interrupt_adhoc()  # an operator's long query must not hold up the stop
        await api.stop()
        await self._drain(settings.shutdown_timeout)
        # a backfill stops between windows once `stopping` is set: let it record that before the store closes
        self.api_pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(loop.run_in_executor(None, self.api_pool.shutdown, True), settings.shutdown_timeout)
        await loop.run_in_executor(None, self.store.close)
        log.info("stopped cleanly")
        return 0

    def stop(self) -> None:
        self.stopping.set()
        if self._stop is not None:
            self._stop.set()

    async def _drain(self, timeout: float) -> None:
        """Let in-flight jobs finish; past the deadline, interrupt their queries and go on."""
        loop = asyncio.get_running_loop()
        waiting = loop.run_in_executor(None, self.jobs.shutdown, True)
        try:
            await asyncio.wait_for(asyncio.shield(waiting), timeout)
        except TimeoutError:
            log.warning("jobs still running after %.0fs: interrupting them", timeout)
            assert self.store is not None
            self.store.interrupt()
            try:
                await asyncio.wait_for(waiting, 1.0)
            except TimeoutError:
                log.warning("abandoning jobs that did not stop")

    async def _tick(self) -> None:
        """Watchdog pings while the scheduler is alive (its heartbeat job runs), and STATUS= updates."""
        interval = watchdog_interval() or 5.0
        heartbeat_every = self._heartbeat_interval()
        last_status = 0.0
        while True:
            await asyncio.sleep(interval)
            healthy = self.jobs.running and time.monotonic() - self.last_heartbeat < 2 * heartbeat_every + 1
            now = time.monotonic()
            if healthy and watchdog_interval():
                self.notifier.send(WATCHDOG=1)
            elif not healthy:
                log.error("scheduler heartbeat missed: withholding the watchdog ping")
            if now - last_status >= 5:
                last_status = now
                summary = await asyncio.get_running_loop().run_in_executor(self.api_pool, self.summary)
                self.notifier.send(STATUS=summary)

    async def reload(self) -> None:
        """SIGHUP: adopt a valid new config; keep the running one when the new one is invalid."""
        loop = asyncio.get_running_loop()
        try:
            new = await loop.run_in_executor(None, load_config, self.config_path, self.state_dir_override)
        except ConfigError as exc:
            self.last_reload_error = str(exc)
            log.error("config reload rejected, keeping the running config: %s", exc)
            self.notifier.send(STATUS=f"reload rejected: {exc}"[:200])
            return
        old = self.config
        for field in ("state_dir", "socket"):
            if getattr(new.daemon, field) != getattr(old.daemon, field):
                log.warning("daemon.%s changed: that takes a restart; keeping %s", field,
                            getattr(old.daemon, field))
        new = await loop.run_in_executor(None, self._register_models, new)
        added, replaced, removed = self.jobs.sync(self._wanted_jobs(new))
        logging.getLogger().setLevel(new.daemon.log_level.upper())
        self.config = new
        self.host.set_paths([new.daemon.state_dir, *model_paths(new.models)])
        self.reloads += 1
        self.last_reload_error = None
        log.info("config reloaded: %d jobs added, %d changed, %d removed", len(added), len(replaced), len(removed))
        self.notifier.send(STATUS=self.summary())

    # -- jobs -----------------------------------------------------------------------------------

    def _register_models(self, config: Config) -> Config:
        """Create or widen each model's table and its reader; returns the config with feature schemas
        taken from reference files where config declares none."""
        assert self.store is not None
        models = tuple(with_reference_features(self.store.cursor(), m) for m in config.models)
        config = dataclasses.replace(config, models=models)
        with self.store.transaction() as cur:
            for model in config.models:
                ensure_model_tables(cur, model.name, model.task, model.features)
        for model in config.models:
            ensure_spools(model)
            self.readers[model.name] = SpoolReader(self.store, model)
        return config

    def _heartbeat_interval(self) -> float:
        return min(watchdog_interval() or 5.0, 5.0)

    def _wanted_jobs(self, config: Config) -> dict[str, JobSpec]:
        wanted = {HEARTBEAT_JOB: JobSpec(HEARTBEAT_JOB, self._heartbeat_interval(), self._heartbeat),
                  RETENTION_JOB: JobSpec(RETENTION_JOB, RETENTION_TICK_S, self._retention)}
        for check in config.host_checks:
            ctx = self._context(config, None)
            job_id = f"{HOST_SCOPE}:{check.name}"
            wanted[job_id] = JobSpec(job_id, check.interval, _bind(run_check, ctx, check), repr(check.settings))
        for model in config.models:
            job_id = f"{model.name}:ingest"
            wanted[job_id] = JobSpec(job_id, config.daemon.ingest_interval, self._ingest_job(model.name),
                                     repr(model))
            ctx = self._context(config, model)
            for check in model.checks:
                job_id = f"{model.name}:{check.name}"
                wanted[job_id] = JobSpec(job_id, check.interval, _bind(run_check, ctx, check),
                                         repr((check.settings, model)),
                                         executor="heavy" if checks.get(check.name).heavy else "default")
        return wanted

    def _context(self, config: Config, model: ModelConfig | None) -> InputContext:
        assert self.store is not None
        return InputContext(self.store, config.daemon, model, self.host)

    def _ingest_job(self, model: str):
        def ingest() -> None:
            report = self.poll_spools(model)
            if report.rows or report.quarantined:
                log.debug("ingest %s: %d rows, %d quarantined", model, report.rows, report.quarantined)
        return ingest

    def ingest_lock(self, model: str) -> threading.RLock:
        with self._ingest_locks_guard:
            return self._ingest_locks.setdefault(model, threading.RLock())

    def poll_spools(self, model: str) -> IngestReport:
        """One poll of a model's spools (scheduled, or right after an HTTP batch), metered either way."""
        with self.ingest_lock(model):
            report = self.readers[model].poll()
            meter = self.meters.get(model)
            if meter is None:
                meter = self.meters[model] = IngestMeter(self.store, model, 5 * self.config.daemon.ingest_interval)
            meter.add(report)
            return report

    def _retention(self) -> None:
        if time.monotonic() < self._retention_due:
            return
        assert self.store is not None
        settings = self.config.daemon
        report = retention.purge(self.store, settings.retention, settings.metrics_retention,
                                 should_stop=lambda: self._stop is not None and self._stop.is_set())
        self._retention_due = time.monotonic() + RETENTION_EVERY_S
        if report.rows:
            log.info("retention: deleted %d rows in %d batches in %.1fs (%s)%s", report.rows, report.batches,
                     report.seconds, ", ".join(f"{t} {n}" for t, n in report.deleted.items() if n),
                     "; checkpointed" if report.checkpointed else "")

    def _heartbeat(self) -> None:
        self.last_heartbeat = time.monotonic()

    # -- views ----------------------------------------------------------------------------------

    def configured_checks(self) -> list[tuple[str, str]]:
        pairs = [(HOST_SCOPE, c.name) for c in self.config.host_checks]
        pairs += [(m.name, c.name) for m in self.config.models for c in m.checks]
        return pairs

    def status(self) -> dict:
        assert self.store is not None
        data = queries.status(self.store.cursor(), self.configured_checks())
        data["daemon"] = {"pid": os.getpid(), "uptime_s": round(time.time() - self.started, 1),
                          "config": str(self.config_path)}
        return data

    def summary(self) -> str:
        """The one-line STATUS= for systemctl status."""
        data = self.status()
        counts = {s: 0 for s in ("warn", "crit", "error")}
        alerts = 0
        for model in data["models"]:
            alerts += model["open_alerts"]
            for check in model["checks"]:
                if check["status"] in counts:
                    counts[check["status"]] += 1
        models = sum(1 for m in data["models"] if m["name"] != HOST_SCOPE)
        checks = sum(len(m["checks"]) for m in data["models"])
        return (f"{models} models, {checks} checks: {counts['crit']} crit, {counts['warn']} warn, "
                f"{counts['error']} error; {alerts} open alerts")


def data_directories(config: Config) -> list[Path]:
    """Where the store may read files (DESIGN.md §2): the spools and the reference files' folders."""
    return [d for m in config.models for d in spool_dirs(m)] + [
        m.reference.parent for m in config.models if m.reference is not None]


def _bind(func, ctx: InputContext, check):
    def job() -> Status:
        return run_check(ctx, check).status
    return job
