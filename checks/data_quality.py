"""data_quality: is the model being fed what it was trained on, in the amounts it usually gets?

Problems here precede drift and accuracy loss and are cheaper to see: a feature that starts arriving
empty, values outside anything seen in training, categories the model never met, records the ingest
rejects, and traffic that collapses or spikes against its own recent history. The daemon counts all of
it in DuckDB over one window (daemon/sources/data_quality.py); this module only judges the counts.

Config stanza (defaults and why):

    [models.checks.data_quality]
    interval = "5m"
    window = "1h"                  # rows with ts in the last hour
    min_rows = 100                 # fewer -> insufficient_data (at 100 rows one null is 1 %)
    null_increase_warn = 0.05      # null share above the reference's by 5 points -> warn
    null_increase_crit = 0.20
    out_of_range_warn = 0.01       # share of a numeric feature outside the reference's [min, max]
    out_of_range_crit = 0.05       #   (training covers the bulk: 1 % outside is a change of regime)
    unseen_warn = 0.01             # share of a categorical feature never seen in the reference
    unseen_crit = 0.05
    quarantine_warn = 0.01         # rejected / offered records in the window
    quarantine_crit = 0.05
    volume_low_warn = 0.5          # rows below half the median of the previous windows -> warn
    volume_high_warn = 3.0         # ... above three times it -> warn
    volume_history = 24            # previous windows the median is taken over (needs at least 3)

Metrics (dims {"feature": name} where per feature): null_share, null_share_reference, out_of_range_share,
unseen_share; rows, quarantined_share, volume_ratio (rows / median of previous windows).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from checks.base import CheckResult, CheckSpec, Duration, Metric, Status, register, threshold_status, worst


@dataclass(frozen=True)
class DataQualitySettings:
    window: Duration = Duration(3600)
    min_rows: int = 100
    null_increase_warn: float = 0.05
    null_increase_crit: float = 0.20
    out_of_range_warn: float = 0.01
    out_of_range_crit: float = 0.05
    unseen_warn: float = 0.01
    unseen_crit: float = 0.05
    quarantine_warn: float = 0.01
    quarantine_crit: float = 0.05
    volume_low_warn: float = 0.5
    volume_high_warn: float = 3.0
    volume_history: int = 24


def evaluate(inputs: Mapping[str, Any], settings: DataQualitySettings) -> CheckResult:
    """inputs: `quality_window`, a mapping with `rows`, `quarantined`, `history` (rows of each previous
    window, newest first) and `features`: name -> {kind ("numeric"|"categorical"), nulls, outside
    (numeric: values outside the reference range; categorical: values never seen), reference_null_share}."""
    w = inputs["quality_window"]
    rows, quarantined = int(w["rows"]), int(w["quarantined"])
    offered = rows + quarantined
    metrics: list[Metric] = [Metric("rows", float(rows))]
    judged: list[tuple[Status, str]] = []
    if offered:
        share = quarantined / offered
        metrics.append(Metric("quarantined_share", share))
        judged.append((threshold_status(share, settings.quarantine_warn, settings.quarantine_crit),
                       f"{share:.1%} of records quarantined ({quarantined}/{offered})"))
    judged += _volume(rows, list(w["history"]), settings, metrics)
    if rows < settings.min_rows:
        bad = [(st, text) for st, text in judged if st is not Status.OK]
        if bad:
            return CheckResult(worst([st for st, _ in bad]), "; ".join(text for _, text in bad), tuple(metrics))
        return CheckResult(Status.INSUFFICIENT_DATA, f"only {rows} rows in the window (min_rows {settings.min_rows})",
                           tuple(metrics))
    for name, f in w["features"].items():
        dims = {"feature": name}
        null_share = f["nulls"] / rows
        reference = float(f["reference_null_share"])
        metrics += [Metric("null_share", null_share, dims), Metric("null_share_reference", reference, dims)]
        judged.append((threshold_status(null_share - reference, settings.null_increase_warn,
                                        settings.null_increase_crit),
                       f"{name} empty in {null_share:.1%} of rows (training {reference:.1%})"))
        present = rows - f["nulls"]
        if present:
            outside = f["outside"] / present
            if f["kind"] == "numeric":
                metrics.append(Metric("out_of_range_share", outside, dims))
                judged.append((threshold_status(outside, settings.out_of_range_warn, settings.out_of_range_crit),
                               f"{name} outside the training range in {outside:.1%} of rows"))
            else:
                metrics.append(Metric("unseen_share", outside, dims))
                judged.append((threshold_status(outside, settings.unseen_warn, settings.unseen_crit),
                               f"{name} has categories unseen in training in {outside:.1%} of rows"))
    bad = [(st, text) for st, text in judged if st is not Status.OK]
    if not bad:
        return CheckResult(Status.OK, f"{rows} rows, {len(w['features'])} features as in training", tuple(metrics))
    bad.sort(key=lambda item: item[0] is not Status.CRIT)
    return CheckResult(worst([st for st, _ in bad]), "; ".join(text for _, text in bad[:4]), tuple(metrics))


def _volume(rows: int, history: list[int], settings: DataQualitySettings,
            metrics: list[Metric]) -> list[tuple[Status, str]]:
    """Rows in this window against the median of the previous ones (a model's own normal, not a constant)."""
    usable = history[: settings.volume_history]
    if len(usable) < 3:
        return []
    median = statistics.median(usable)
    if median <= 0:
        return []
    ratio = rows / median
    metrics.append(Metric("volume_ratio", ratio))
    if ratio < settings.volume_low_warn:
        return [(Status.WARN, f"{rows} rows, {ratio:.0%} of the usual {median:.0f}")]
    if ratio > settings.volume_high_warn:
        return [(Status.WARN, f"{rows} rows, {ratio:.1f}x the usual {median:.0f}")]
    return [(Status.OK, "")]


SPEC = register(
    CheckSpec(
        name="data_quality",
        scope="model",
        settings=DataQualitySettings,
        inputs=("quality_window",),
        evaluate=evaluate,
        default_interval=300.0,
        description="nulls, out-of-range values, unseen categories, quarantine rate and volume",
        historical=True,
    )
)
