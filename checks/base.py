"""The contract between checks and the daemon, and the registry that maps config names to checks."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


class Status(enum.StrEnum):
    """Outcome of one check run, ordered by how much attention it needs."""

    OK = "ok"
    INSUFFICIENT_DATA = "insufficient_data"  # too little data to judge: neither ok nor an alarm
    WARN = "warn"
    CRIT = "crit"
    ERROR = "error"  # the check itself failed; it cannot vouch for the model

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {
    Status.OK: 0,
    Status.INSUFFICIENT_DATA: 0,
    Status.WARN: 1,
    Status.CRIT: 2,
    Status.ERROR: 2,
}


class Duration(float):
    """Seconds. A settings field typed Duration accepts "90s", "5m", "1h", "2d" or a number in config."""


@dataclass(frozen=True)
class Metric:
    name: str
    value: float
    dims: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    status: Status
    reason: str
    metrics: tuple[Metric, ...] = ()


Scope = Literal["model", "host"]


@dataclass(frozen=True)
class CheckSpec:
    """A registered check.

    `inputs` names what the daemon must gather before calling `evaluate` (see daemon/inputs.py); the
    settings dataclass doubles as the config schema, so its field types and defaults are what config
    validation enforces and what the README documents.
    """

    name: str
    scope: Scope
    settings: type
    inputs: tuple[str, ...]
    evaluate: Callable[[Mapping[str, Any], Any], CheckResult]
    default_interval: float
    description: str = ""
    # Its inputs can be read as of a past time (windows on event time), so `modeltop backfill` can replay it.
    historical: bool = False
    # Seconds of CPU per run rather than milliseconds: the daemon runs it on its own worker thread so it never
    # delays the cheap checks, and its default interval is long.
    heavy: bool = False

    def default_settings(self) -> Any:
        return self.settings()

    def setting_fields(self) -> tuple[dataclasses.Field, ...]:
        return dataclasses.fields(self.settings)


_REGISTRY: dict[str, CheckSpec] = {}


def register(spec: CheckSpec) -> CheckSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"check {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> CheckSpec:
    return _REGISTRY[name]


def all_checks() -> dict[str, CheckSpec]:
    return dict(_REGISTRY)


def worst(statuses: list[Status]) -> Status:
    """The status that needs most attention; ERROR outranks CRIT only when severities tie on order."""
    order = [Status.OK, Status.INSUFFICIENT_DATA, Status.WARN, Status.ERROR, Status.CRIT]
    return max(statuses, key=order.index, default=Status.OK)


def format_p(p: float) -> str:
    """A p-value as reasons show it: two digits, and "p<1e-6" where more digits only look precise."""
    return "p<1e-6" if p < 1e-6 else f"p={p:.2g}"


def threshold_status(value: float, warn: float | None, crit: float | None, higher_is_worse: bool = True) -> Status:
    """Classify a value against optional warn/crit thresholds."""
    def past(limit: float | None) -> bool:
        if limit is None:
            return False
        return value >= limit if higher_is_worse else value <= limit

    if past(crit):
        return Status.CRIT
    if past(warn):
        return Status.WARN
    return Status.OK
