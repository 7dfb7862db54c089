"""labels: are the ground-truth labels arriving, and how late (label lag)?

Every performance figure (accuracy, error, calibration) rests on labels; when the label feed stops, those
figures quietly go stale. This check looks at the predictions made between `window` and `label_age` ago —
old enough that their label should be known by now — and reports the share still without a label and,
for the labelled ones, how long after the prediction its label became known (the label's own `ts`, which
defaults to when it was ingested). The daemon (daemon/sources/labels.py) computes it in one DuckDB query.

Config stanza (defaults):

    [models.checks.labels]
    interval = "5m"             # labels move slowly; the query scans the window of predictions
    window = "7d"               # predictions with ts in the last 7 days ...
    label_age = "1h"            # ... and at least this old: younger ones may still be waiting for a label
    min_predictions = 20        # fewer such predictions -> insufficient_data (a share of 3 says little)
    missing_share_warn = 0.5    # share of those predictions without a label
    missing_share_crit = 0.9    # ~no labels at all: performance checks are blind
    # delay_p90_warn = "2d"     # off by default: only you know when labels are due
    # delay_p90_crit = "7d"

Why these defaults: the check runs only where configured, and `label_age` is the operator's statement of
when a label is due, so a majority of due predictions without a label means the label feed is broken (or
`label_age` is wrong) — worth a warning; 90 % means performance monitoring has practically nothing to go
on. A model labelled only in part by design (fraud: only disputed transactions get a label) raises both
thresholds above its normal share; `missing_share_crit = 1.0` alone then still catches a feed that stopped
altogether (a threshold is reached when the share is at or above it). The share is
taken over the whole window, so a feed that stopped an hour ago moves it only a little at first: a shorter
`window` notices a stop sooner, a longer one gives steadier delay percentiles. A model without a
`labels` spool configured is `insufficient_data` ("no labels configured").

Metrics (dims {}):
    predictions_due          predictions in the window old enough to expect a label       count
    predictions_labelled     of those, how many have a label                             count
    label_missing_share      1 - labelled / due                     ratio 0..1, higher is worse (judged)
    label_delay_p50_seconds  median delay from prediction ts to label ts (labelled ones)   s, higher is worse
    label_delay_p90_seconds  90th percentile of that delay                    s, higher is worse (judged)
Delays are clamped at 0 (a label stamped before its prediction, e.g. by clock skew, counts as immediate);
with several labels for one request_id the first counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from checks.base import CheckResult, CheckSpec, Duration, Metric, Status, register, threshold_status, worst
from checks.freshness import format_age


@dataclass(frozen=True)
class LabelsSettings:
    window: Duration = Duration(7 * 86400)
    label_age: Duration = Duration(3600)
    min_predictions: int = 20
    missing_share_warn: float | None = 0.5
    missing_share_crit: float | None = 0.9
    delay_p90_warn: Duration | None = None
    delay_p90_crit: Duration | None = None

    def __post_init__(self) -> None:
        if self.label_age >= self.window:
            raise ValueError(f"label_age shorter than window, found label_age {format_age(self.label_age)} "
                             f"and window {format_age(self.window)}")
        for name in ("missing_share_warn", "missing_share_crit"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} between 0 and 1 (a share), found {value:g}")


def evaluate(inputs: Mapping[str, Any], settings: LabelsSettings) -> CheckResult:
    """inputs: `label_lag`: None when the model has no labels spool, else `due` (predictions between
    window and label_age old), `labelled` (of those, with a label), `delay_p50` and `delay_p90` (seconds,
    None when none is labelled)."""
    lag = inputs["label_lag"]
    if lag is None:
        return CheckResult(Status.INSUFFICIENT_DATA, "no labels configured (set models[].labels)")
    due, labelled = int(lag["due"]), int(lag["labelled"])
    span = f"{format_age(settings.label_age)}-{format_age(settings.window)} old"
    if due == 0:
        return CheckResult(Status.INSUFFICIENT_DATA, f"no prediction {span} yet",
                           (Metric("predictions_due", 0.0), Metric("predictions_labelled", 0.0)))
    missing = 1.0 - labelled / due
    metrics = [Metric("predictions_due", float(due)), Metric("predictions_labelled", float(labelled)),
               Metric("label_missing_share", missing)]
    judged = due >= settings.min_predictions
    share = threshold_status(missing, settings.missing_share_warn, settings.missing_share_crit)
    parts = [(share, _share_text(missing, due, span, share if judged else Status.OK, settings))]
    p50, p90 = lag["delay_p50"], lag["delay_p90"]
    if p50 is not None and p90 is not None:
        metrics += [Metric("label_delay_p50_seconds", float(p50)), Metric("label_delay_p90_seconds", float(p90))]
        delay = threshold_status(float(p90), settings.delay_p90_warn, settings.delay_p90_crit)
        parts.append((delay, _delay_text(float(p50), float(p90), delay if judged else Status.OK, settings)))
    if not judged:
        return CheckResult(Status.INSUFFICIENT_DATA, "; ".join(text for _, text in parts)
                           + f" (fewer than min_predictions {settings.min_predictions})", tuple(metrics))
    parts.sort(key=lambda item: -item[0].severity)  # the problem first
    return CheckResult(worst([st for st, _ in parts]), "; ".join(text for _, text in parts), tuple(metrics))


def _share_text(missing: float, due: int, span: str, status: Status, s: LabelsSettings) -> str:
    text = f"{missing:.0%} of {due} predictions {span} have no label"
    if status is not Status.OK:
        limit = s.missing_share_crit if status is Status.CRIT else s.missing_share_warn
        text += f" ({status.value} at {limit or 0.0:.0%})"
    return text


def _delay_text(p50: float, p90: float, status: Status, s: LabelsSettings) -> str:
    note = ""
    if status is not Status.OK:
        limit = s.delay_p90_crit if status is Status.CRIT else s.delay_p90_warn
        note = f", {status.value} at {format_age(limit or 0.0)}"
    return f"labels arrive after {format_age(p50)} (p50) and {format_age(p90)} (p90{note})"


SPEC = register(
    CheckSpec(
        name="labels",
        scope="model",
        settings=LabelsSettings,
        inputs=("label_lag",),
        evaluate=evaluate,
        default_interval=300.0,
        description="share of due predictions without a label, and label delay",
        historical=True,
    )
)
