"""freshness: how long since the model last logged a prediction.

A silent model server is the most common production failure and the cheapest to detect: the check
reads only the newest prediction timestamp.

Config stanza (defaults):

    [models.checks.freshness]
    interval = "30s"     # how often to evaluate
    warn_after = "5m"    # no prediction for this long -> warn
    crit_after = "15m"   # ... -> crit
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from checks.base import CheckResult, CheckSpec, Duration, Metric, Status, register, threshold_status


@dataclass(frozen=True)
class FreshnessSettings:
    warn_after: Duration = Duration(300)
    crit_after: Duration = Duration(900)


def evaluate(inputs: Mapping[str, Any], settings: FreshnessSettings) -> CheckResult:
    """inputs: `now` (epoch s) and `newest_prediction_ts` (epoch s, or None when nothing was logged yet)."""
    newest = inputs["newest_prediction_ts"]
    if newest is None:
        return CheckResult(Status.INSUFFICIENT_DATA, "no prediction logged yet")
    age = max(0.0, float(inputs["now"]) - float(newest))
    status = threshold_status(age, settings.warn_after, settings.crit_after)
    reason = f"newest prediction {format_age(age)} ago"
    if status is not Status.OK:
        limit = settings.crit_after if status is Status.CRIT else settings.warn_after
        reason += f" (limit {format_age(limit)})"
    return CheckResult(status, reason, (Metric("age_seconds", age),))


def format_age(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


SPEC = register(
    CheckSpec(
        name="freshness",
        scope="model",
        settings=FreshnessSettings,
        inputs=("now", "newest_prediction_ts"),
        evaluate=evaluate,
        default_interval=30.0,
        description="seconds since the newest prediction",
        historical=True,
    )
)
