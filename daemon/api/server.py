"""The local API: HTTP + JSON over a Unix socket, served by aiohttp (DESIGN.md §3).

The socket's file mode is the authentication (0660: owner and group); the peer's uid, read with
SO_PEERCRED, is recorded with every action. Database work runs on the daemon's API thread pool so the
event loop keeps answering (health stays fast while a heavy query runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import pwd
import socket
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from daemon import actions
from daemon.api import ingest
from daemon.store import queries
from daemon.store.migrations import LATEST
from daemon.store.readonly_sql import SqlFailed, SqlRejected, run_query
from daemon.store.snapshot import write_snapshot

if TYPE_CHECKING:
    from daemon.service import Daemon

log = logging.getLogger("modeltop.api")

API_VERSION = 1
MAX_BODY = 8 * 1024 * 1024


class ApiError(web.HTTPException):
    """A JSON error: {"error": message}."""

    def __init__(self, status: int, message: str) -> None:
        self.status_code = status
        super().__init__(text=json.dumps({"error": message}), content_type="application/json")


def peer(request: web.Request) -> tuple[int | None, str]:
    """(uid, user name) of the process on the other end of the socket."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is None or sock.family != socket.AF_UNIX:
        return None, "unknown"
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          struct.calcsize("3i")))
    try:
        return uid, pwd.getpwuid(uid).pw_name
    except KeyError:
        return uid, f"uid{uid}"


def _time_param(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO-8601 time, got {text!r}") from None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _int_param(request: web.Request, name: str, default: int, maximum: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {text!r}") from None
    if not 1 <= value <= maximum:
        raise ApiError(400, f"{name} must be between 1 and {maximum}")
    return value


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


class ApiServer:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors])
        self.app.add_routes([
            web.get("/v1/health", self.health),
            web.get("/v1/status", self.status),
            web.get("/v1/metrics", self.metrics),
            web.get("/v1/alerts", self.alerts),
            web.get("/v1/check_runs", self.check_runs),
            web.get("/v1/jobs", self.jobs),
            web.post("/v1/sql", self.sql),
            web.post("/v1/actions", self.action),
            web.post("/v1/snapshot", self.snapshot),
            web.post("/v1/ingest/{model}/{source}", self.ingest),
        ])
        # Requests still running at shutdown get 2 s: the daemon interrupts their queries first.
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        self.path: Path | None = None

    async def start(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_socket(path)
        await asyncio.get_running_loop().run_in_executor(None, ingest.remove_stale_temp_files,
                                                         self.daemon.config.models)
        await self.runner.setup()
        site = web.UnixSite(self.runner, str(path))
        await site.start()
        os.chmod(path, 0o660)
        self.path = path

    async def stop(self) -> None:
        await self.runner.cleanup()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.daemon.api_pool, fn, *args)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.content_type == "application/json":
                raise
            raise ApiError(exc.status_code, exc.reason) from None
        except Exception as exc:  # the API must answer, not drop the connection
            log.exception("API %s %s failed", request.method, request.path)
            raise ApiError(500, f"{type(exc).__name__}: {exc}") from None

    # -- handlers -------------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        d = self.daemon
        return web.json_response({
            "status": "ok" if d.jobs.running else "degraded",
            "api_version": API_VERSION,
            "schema_version": LATEST,
            "pid": os.getpid(),
            "uptime_s": round(datetime.now().timestamp() - d.started, 1),
            "scheduler_running": d.jobs.running,
            "jobs": len(d.jobs.specs),
            "models": [m.name for m in d.config.models],
            "config": str(d.config_path),
            "reloads": d.reloads,
            "last_reload_error": d.last_reload_error,
        })

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(await self._db(self.daemon.status))

    async def metrics(self, request: web.Request) -> web.Response:
        q = request.query
        missing = [k for k in ("model", "check", "metric") if not q.get(k)]
        if missing:
            raise ApiError(400, "missing query parameter(s): " + ", ".join(missing))
        dims = None
        if q.get("dims"):
            try:
                dims = json.loads(q["dims"])
            except json.JSONDecodeError:
                raise ApiError(400, "dims must be a JSON object such as {\"feature\":\"age\"}") from None
        since, until = _time_param(request, "since"), _time_param(request, "until")
        limit = _int_param(request, "limit", 10_000, 100_000)
        points = await self._db(lambda: queries.metric_series(
            self.daemon.store.cursor(), q["model"], q["check"], q["metric"], dims, since, until, limit))
        return web.json_response({"model": q["model"], "check": q["check"], "metric": q["metric"],
                                  "dims": dims, "points": points})

    async def alerts(self, request: web.Request) -> web.Response:
        state = request.query.get("state", "active")
        if state not in ("active", "open", "acknowledged", "resolved", "all"):
            raise ApiError(400, "state must be one of active, open, acknowledged, resolved, all")
        limit = _int_param(request, "limit", 200, 10_000)
        rows = await self._db(lambda: queries.alerts(self.daemon.store.cursor(), state,
                                                     request.query.get("model"), limit))
        return web.json_response({"alerts": rows})

    async def check_runs(self, request: web.Request) -> web.Response:
        limit = _int_param(request, "limit", 100, 10_000)
        rows = await self._db(lambda: queries.check_runs(self.daemon.store.cursor(), request.query.get("model"),
                                                         request.query.get("check"), limit))
        return web.json_response({"check_runs": rows})

    async def jobs(self, request: web.Request) -> web.Response:
        jobs = self.daemon.jobs
        return web.json_response({"jobs": [
            {"id": job_id, "interval_s": spec.interval, **vars(jobs.state.get(job_id, object()))}
            for job_id, spec in sorted(jobs.specs.items())
        ]})

    async def sql(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ApiError(400, "body.query must be a non-empty SQL string")
        settings = self.daemon.config.daemon
        max_rows = body.get("max_rows", settings.sql_max_rows)
        if not isinstance(max_rows, int) or not 1 <= max_rows <= settings.sql_max_rows:
            raise ApiError(400, f"max_rows must be an integer between 1 and {settings.sql_max_rows}")

        def run() -> dict[str, Any]:
            with self.daemon.store.adhoc_cursor() as cur:
                return run_query(cur, query, max_rows, settings.sql_timeout).as_json()

        try:
            return web.json_response(await self._db(run))
        except SqlRejected as exc:
            raise ApiError(403, f"rejected: {exc}") from None
        except SqlFailed as exc:
            raise ApiError(400, str(exc)) from None

    async def action(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        uid, user = peer(request)
        request_ = actions.ActionRequest(
            action=str(body.get("action", "")), model=body.get("model"), params=body.get("params") or {},
            actor=user, uid=uid,
        )
        outcome = await self._db(actions.perform, self.daemon, request_)
        code = {"ok": 200, "rejected": 400, "failed": 409}[outcome.status]
        return web.json_response(outcome.as_json(), status=code)

    async def snapshot(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        path = body.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise ApiError(400, "body.path must be an absolute file path")

        def run() -> int:
            with self.daemon.store.adhoc_cursor() as cur:
                return write_snapshot(cur, self.daemon.store.path, Path(path))

        try:
            size = await self._db(run)
        except (FileExistsError, FileNotFoundError, PermissionError) as exc:
            raise ApiError(400, str(exc)) from None
        return web.json_response({"path": path, "bytes": size})

    async def ingest(self, request: web.Request) -> web.Response:
        name, source = request.match_info["model"], request.match_info["source"]
        if source not in ingest.SOURCES:
            raise ApiError(404, f"unknown record kind {source!r}: POST to /v1/ingest/{name}/predictions or "
                                f"/v1/ingest/{name}/labels")
        try:
            model = self.daemon.config.model(name)
        except KeyError:
            known = ", ".join(m.name for m in self.daemon.config.models) or "none"
            raise ApiError(404, f"unknown model {name!r}; configured models: {known}") from None
        if ingest.spool_of(model, source) is None:
            raise ApiError(404, f"model {name!r} has no labels spool: set models[].labels in the config")
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            raise ApiError(415, f"{request.content_type} is not a batch of records: send NDJSON with "
                                "Content-Type: application/x-ndjson (curl: --data-binary @file, not -d, "
                                "which drops the newlines)")
        too_large = (f"the body is larger than {MAX_BODY // 2**20} MiB ({MAX_BODY} bytes): send the records in "
                     "smaller batches")
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise ApiError(413, too_large)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(413, too_large) from None
        try:
            data, records = ingest.to_ndjson(body)
        except ingest.BadBatch as exc:
            raise ApiError(400, str(exc)) from None
        outcome = await self._db(ingest.ingest_batch, self.daemon, model, source, data, records)
        uid, user = peer(request)
        if outcome.get("queued"):
            log.warning("ingest %s/%s over HTTP from %s (uid %s): %d records spooled as %s, not read yet",
                        name, source, user, uid, records, outcome["file"])
            return web.json_response({**outcome, "records": records}, status=202)
        log.info("ingest %s/%s over HTTP from %s (uid %s): %d records, %d accepted, %d quarantined "
                 "(%d duplicates), %s", name, source, user, uid, records, outcome["accepted"],
                 outcome["quarantined"], outcome["duplicates"], outcome["file"])
        return web.json_response(outcome)


def _remove_stale_socket(path: Path) -> None:
    """A socket file left by a crashed daemon is removed; one that answers belongs to a live daemon."""
    if not path.exists() and not path.is_symlink():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            path.unlink(missing_ok=True)
            return
        raise
    else:
        raise RuntimeError(f"another daemon answers on {path}; stop it first")
    finally:
        probe.close()
