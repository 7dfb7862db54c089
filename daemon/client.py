"""A synchronous client for the daemon's API, for the CLI and the TUI's worker threads.

Imports nothing heavy (no duckdb, no psutil), so the TUI can use it and stay a pure client.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx


class DaemonUnreachable(Exception):
    """No daemon answers on the socket (not running, wrong path, or no permission)."""


class ApiError(Exception):
    """The daemon answered with an error; `status` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Client:
    def __init__(self, socket_path: Path | str, timeout: float = 5.0) -> None:
        self.socket_path = Path(socket_path)
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(self.socket_path)), base_url="http://modeltop", timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
              content: bytes | None = None, headers: dict[str, str] | None = None,
              timeout: float | None = None) -> Any:
        if not self.socket_path.exists():
            raise DaemonUnreachable(f"no daemon socket at {self.socket_path}")
        try:
            kwargs: dict[str, Any] = {"params": {k: v for k, v in (params or {}).items() if v is not None}}
            if body is not None:
                kwargs["json"] = body
            if content is not None:
                kwargs["content"] = content
            if headers is not None:
                kwargs["headers"] = headers
            if timeout is not None:
                kwargs["timeout"] = timeout
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.RemoteProtocolError, PermissionError) as exc:
            raise DaemonUnreachable(f"cannot reach the daemon on {self.socket_path}: {exc}") from None
        except httpx.TimeoutException:
            raise DaemonUnreachable(f"the daemon on {self.socket_path} did not answer in time") from None
        try:
            data = response.json()
        except json.JSONDecodeError:
            raise ApiError(response.status_code, response.text[:200]) from None
        if response.status_code >= 400 and not (path == "/v1/actions" and "status" in data):
            raise ApiError(response.status_code, data.get("error", response.text[:200]))
        return data

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/v1/health")

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/v1/status")

    def metrics(self, model: str, check: str, metric: str, dims: dict | None = None,
                since: str | None = None, until: str | None = None, limit: int | None = None) -> dict[str, Any]:
        return self._call("GET", "/v1/metrics", params={
            "model": model, "check": check, "metric": metric, "dims": json.dumps(dims) if dims else None,
            "since": since, "until": until, "limit": limit})

    def alerts(self, state: str = "active", model: str | None = None) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/alerts", params={"state": state, "model": model})["alerts"]

    def check_runs(self, model: str | None = None, check: str | None = None, limit: int = 100) -> list[dict]:
        return self._call("GET", "/v1/check_runs", params={"model": model, "check": check, "limit": limit})[
            "check_runs"]

    def sql(self, query: str, max_rows: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query}
        if max_rows is not None:
            body["max_rows"] = max_rows
        return self._call("POST", "/v1/sql", body=body, timeout=120)

    def action(self, action: str, model: str | None = None, wait: float | None = None, **params: Any) -> dict[str, Any]:
        """`wait`: seconds to wait for the answer (default the client's timeout; a backfill takes longer)."""
        return self._call("POST", "/v1/actions", body={"action": action, "model": model, "params": params},
                          timeout=wait)

    def snapshot(self, path: Path | str) -> dict[str, Any]:
        return self._call("POST", "/v1/snapshot", body={"path": str(Path(path).resolve())}, timeout=300)

    def ingest(self, model: str, records: Iterable[dict[str, Any] | str],
               source: str = "predictions") -> dict[str, Any]:
        """Send records (dicts, or JSON lines as they are) as one NDJSON batch; the daemon answers once they
        are stored: {accepted, quarantined, duplicates, file, rejected: [{line, reason}]}."""
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        return self._call("POST", f"/v1/ingest/{quote(model, safe='')}/{quote(source, safe='')}",
                          content="".join(line + "\n" for line in lines).encode(),
                          headers={"Content-Type": "application/x-ndjson"}, timeout=120)
