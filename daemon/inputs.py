"""What checks ask for, gathered by the daemon (checks stay pure: DESIGN.md §4).

A check names its inputs in its CheckSpec; each name maps to one provider here. A new check that needs
new data adds one provider function with `@provides("name")`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from daemon.config import CheckConfig, DaemonSettings, ModelConfig
from daemon.sources.host import HostSampler
from daemon.store.db import Store, quote_ident, utcnow


@dataclass
class InputContext:
    store: Store
    daemon: DaemonSettings
    model: ModelConfig | None  # None for host-scoped checks
    host: HostSampler
    check: CheckConfig | None = None  # the check being run, so a provider can read its settings
    # The evaluation time (naive UTC). None = the wall clock, for live runs; `modeltop backfill` sets it to a
    # window's end so every provider reads the data as it was known then (point in time).
    at: datetime | None = None

    def now(self) -> datetime:
        """The time the check is evaluated at: providers bound every window by it (`ts <= now`)."""
        return self.at if self.at is not None else utcnow()


Provider = Callable[[InputContext], Any]
S = TypeVar("S")
_PROVIDERS: dict[str, Provider] = {}


def provides(name: str) -> Callable[[Provider], Provider]:
    def register(fn: Provider) -> Provider:
        _PROVIDERS[name] = fn
        return fn

    return register


def check_settings(ctx: InputContext, kind: type[S]) -> S:
    """The settings of the check being fed, or that check's defaults when a provider is called outside
    a check run (benchmarks, another check asking for the same input)."""
    if ctx.check is not None and isinstance(ctx.check.settings, kind):
        return ctx.check.settings
    if ctx.model is not None:
        for check in ctx.model.checks:
            if isinstance(check.settings, kind):
                return check.settings
    return kind()


def gather(names: tuple[str, ...], ctx: InputContext) -> Mapping[str, Any]:
    missing = [n for n in names if n not in _PROVIDERS]
    if missing:
        raise LookupError(f"no input provider for {', '.join(missing)}")
    return {name: _PROVIDERS[name](ctx) for name in names}


@provides("now")
def _now(ctx: InputContext) -> float:
    return time.time() if ctx.at is None else ctx.at.replace(tzinfo=UTC).timestamp()


@provides("newest_prediction_ts")
def _newest_prediction(ctx: InputContext) -> float | None:
    assert ctx.model is not None, "newest_prediction_ts is a model input"
    table = quote_ident(ctx.model.predictions_table)
    return ctx.store.cursor().execute(f"SELECT epoch(max(ts)) FROM {table} WHERE ts <= ?", [ctx.now()]).fetchone()[0]


@provides("host_sample")
def _host_sample(ctx: InputContext) -> dict[str, Any]:
    return ctx.host.sample()


# Providers that live beside their data source register themselves on import: one line each.
from daemon.sources import data_quality as _data_quality  # noqa: E402,F401  (registers providers)
from daemon.sources import drift as _drift  # noqa: E402,F401  (registers providers)
from daemon.sources import fairness as _fairness  # noqa: E402,F401  (registers providers)
from daemon.sources import gpu as _gpu  # noqa: E402,F401  (registers providers)
from daemon.sources import labels as _labels  # noqa: E402,F401  (registers providers)
from daemon.sources import multivariate_drift as _multivariate_drift  # noqa: E402,F401  (registers providers)
from daemon.sources import outputs as _outputs  # noqa: E402,F401  (registers providers)
from daemon.sources import performance as _performance  # noqa: E402,F401  (registers providers)
from daemon.sources import process as _process  # noqa: E402,F401  (registers providers)
from daemon.sources import segments as _segments  # noqa: E402,F401  (registers providers)
from daemon.sources import service as _service  # noqa: E402,F401  (registers providers)
