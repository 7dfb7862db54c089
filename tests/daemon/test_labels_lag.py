"""The `labels` check: label coverage and delay computed by DuckDB on a real store, then judged."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from checks.base import Status
from checks.labels import LabelsSettings, evaluate
from daemon.config import ConfigError, load_config
from daemon.sources.labels import label_lag
from daemon.store.db import Store, ensure_model_tables, utcnow
from support import BASE_CONFIG


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "modeltop.duckdb")
    with store.transaction() as cur:
        ensure_model_tables(cur, "churn", "classification", {})
    yield store
    store.close()


def test_share_without_label_and_delay_percentiles_over_due_predictions(store):
    now = utcnow()
    rng = np.random.default_rng(7)
    delays = rng.exponential(3600.0, 60)  # seconds from prediction to label, for the 60 labelled of 100
    with store.transaction() as cur:
        for i in range(100):  # 2-3 days old: due (window 7d, label_age 1h)
            cur.execute("INSERT INTO predictions_churn (ts, request_id, ingested_at) VALUES (?, ?, ?)",
                        [now - timedelta(days=2, minutes=i), f"r{i}", now])
        for i, delay in enumerate(delays):
            ts = now - timedelta(days=2, minutes=i) + timedelta(seconds=float(delay))
            cur.execute("INSERT INTO labels VALUES ('churn', ?, '1', ?, ?)", [f"r{i}", ts, now])
            # a correction later on does not count as the label's arrival
            cur.execute("INSERT INTO labels VALUES ('churn', ?, '0', ?, ?)", [f"r{i}", now, now])
        for request_id, age in (("young", timedelta(minutes=10)), ("ancient", timedelta(days=8))):
            cur.execute("INSERT INTO predictions_churn (ts, request_id, ingested_at) VALUES (?, ?, ?)",
                        [now - age, request_id, now])
        cur.execute("INSERT INTO labels VALUES ('other', 'r99', '1', ?, ?)", [now, now])  # another model's
    lag = label_lag(store.cursor(), "churn", "predictions_churn", 7 * 86400, 3600, now=now)
    assert (lag["due"], lag["labelled"]) == (100, 60)
    expected = np.percentile(np.round(delays, 6), [50, 90])  # linear interpolation, as quantile_cont
    assert [lag["delay_p50"], lag["delay_p90"]] == pytest.approx(expected, abs=1e-3)
    result = evaluate({"label_lag": lag}, LabelsSettings())
    assert result.status is Status.OK
    assert result.reason.startswith("40% of 100 predictions 60m-7.0d old have no label; labels arrive after")
    metrics = {m.name: m.value for m in result.metrics}
    assert metrics["label_missing_share"] == pytest.approx(0.4)
    assert metrics["label_delay_p90_seconds"] == pytest.approx(expected[1], abs=1e-3)


def test_a_label_stamped_before_its_prediction_counts_as_immediate(store):
    now = utcnow()
    with store.transaction() as cur:
        cur.execute("INSERT INTO predictions_churn (ts, request_id, ingested_at) VALUES (?, 'r', ?)",
                    [now - timedelta(hours=2), now])
        cur.execute("INSERT INTO labels VALUES ('churn', 'r', '1', ?, ?)", [now - timedelta(hours=3), now])
    lag = label_lag(store.cursor(), "churn", "predictions_churn", 86400, 3600, now=now)
    assert lag == {"due": 1, "labelled": 1, "delay_p50": 0.0, "delay_p90": 0.0}


def lag(due: int, labelled: int, p90: float | None = 60.0) -> dict:
    return {"label_lag": {"due": due, "labelled": labelled, "delay_p50": p90 and p90 / 2, "delay_p90": p90}}


@pytest.mark.parametrize(("inputs", "settings", "status", "reason"), [
    ({"label_lag": None}, LabelsSettings(), Status.INSUFFICIENT_DATA, "no labels configured (set models[].labels)"),
    (lag(0, 0, None), LabelsSettings(), Status.INSUFFICIENT_DATA, "no prediction 60m-7.0d old yet"),
    (lag(10, 0, None), LabelsSettings(), Status.INSUFFICIENT_DATA,
     "100% of 10 predictions 60m-7.0d old have no label (fewer than min_predictions 20)"),
    (lag(100, 49), LabelsSettings(), Status.WARN,
     "51% of 100 predictions 60m-7.0d old have no label (warn at 50%); labels arrive after 30s (p50) and 60s (p90)"),
    (lag(100, 5), LabelsSettings(), Status.CRIT, "95% of 100 predictions 60m-7.0d old have no label (crit at 90%)"),
    (lag(100, 0, None), LabelsSettings(), Status.CRIT,
     "100% of 100 predictions 60m-7.0d old have no label (crit at 90%)"),
    (lag(100, 90, 3 * 86400), LabelsSettings(delay_p90_warn=86400), Status.WARN,
     "labels arrive after 36.0h (p50) and 3.0d (p90, warn at 24.0h); 10% of"),
    (lag(100, 90, 3 * 86400), LabelsSettings(missing_share_warn=0.98, missing_share_crit=1.0), Status.OK,
     "10% of 100 predictions"),
])
def test_judging(inputs, settings, status, reason):
    result = evaluate(inputs, settings)
    assert result.status is status and result.reason.startswith(reason)


def test_settings_are_validated_with_the_config(tmp_path):
    config = tmp_path / "modeltop.toml"
    for stanza, words in (
        ('window = "1h"\nlabel_age = "2h"', "label_age shorter than window, found label_age 2.0h and window 60m"),
        ("missing_share_warn = 50.0", "expected missing_share_warn between 0 and 1 (a share), found 50"),
        ('delay_p90_warn = "3d"\ndelay_p90_crit = "1d"', "not above delay_p90_crit"),
    ):
        config.write_text(BASE_CONFIG + f"\n[models.checks.labels]\n{stanza}\n")
        with pytest.raises(ConfigError) as err:
            load_config(config)
        assert err.value.key.startswith("models[0].checks.labels") and words in str(err.value)
    config.write_text(BASE_CONFIG + '\n[models.checks.labels]\ndelay_p90_warn = "2d"\n')
    settings = load_config(config).model("churn").checks[-1].settings
    assert (settings.window, settings.label_age, settings.delay_p90_warn) == (7 * 86400, 3600, 2 * 86400)
