"""segments and fairness in the daemon: their inputs from a real store (windows bounded by the evaluation time,
labels known at it), and both checks end to end on a running daemon with a reference file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from checks.base import Status
from checks.fairness import GroupCounts
from daemon.config import load_config
from daemon.inputs import InputContext, gather
from daemon.runner import run_check
from daemon.sources.host import HostSampler
from daemon.store.db import Store, ensure_model_tables, utcnow
from support import BASE_CONFIG, DaemonHandle, wait_for

REGIONS = np.array(["north", "south", "central"])

STORE_CONFIG = """
[[models]]
name = "churn"
predictions = "spool/churn/predictions"
reference = "reference.parquet"

[models.features]
tenure_months = "double"
contract = "string"
region = "string"

[models.checks.segments]
column = "region"
window = "1h"
min_labelled = 20
min_rows = 100

[models.checks.fairness]
protected = "region"
window = "1h"
min_rows = 20
min_positives = 5
"""


def outcomes(rng: np.random.Generator, region: np.ndarray, tpr: dict, fpr: dict) -> tuple[np.ndarray, np.ndarray]:
    """Labels (40 % positive) and predictions with each region's true and false positive rates, as '0'/'1'."""
    label = rng.random(region.size) < 0.4
    chance = np.where(label, np.vectorize(tpr.get)(region), np.vectorize(fpr.get)(region))
    return label.astype(int).astype(str), (rng.random(region.size) < chance).astype(int).astype(str)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[InputContext]:
    path = tmp_path / "config.toml"
    path.write_text(STORE_CONFIG)
    config = load_config(path, state_dir=tmp_path / "state")
    store = Store(config.daemon.database)
    model = config.model("churn")
    ensure_model_tables(store.cursor(), model.name, model.task, model.features)
    yield InputContext(store, config.daemon, model, HostSampler(tmp_path))
    store.close()


def test_inputs_are_bounded_by_the_evaluation_time_and_use_the_labels_known_then(ctx):
    rng = np.random.default_rng(0)
    at = utcnow() - timedelta(hours=3)  # a backfill run: data after `at` did not exist yet
    n = 4000
    age = rng.uniform(-1800, 5400, n)  # seconds before `at`: some after it, some older than the 1h window
    region = rng.choice(np.r_[REGIONS, [None]], n, p=[0.4, 0.3, 0.2, 0.1])
    label, prediction = outcomes(rng, np.where(region == None, "north", region),  # noqa: E711
                                 {"north": 0.9, "south": 0.8, "central": 0.3}, {"north": 0.3, "south": 0.1,
                                                                                "central": 0.3})
    label_age = rng.uniform(-3600, 3600, n)  # when each label became known, relative to `at`
    batch = pa.table({
        "ts": pa.array([at - timedelta(seconds=float(a)) for a in age], pa.timestamp("us")),
        "request_id": [f"r{i}" for i in range(n)], "prediction": prediction,
        "tenure_months": rng.normal(30, 10, n), "contract": rng.choice(["monthly", "yearly"], n),
        "region": pa.array(region.tolist(), pa.string()),
        "ingested_at": pa.array([at] * n, pa.timestamp("us")),
    })
    labels = pa.table({
        "model": ["churn"] * (2 * n), "request_id": [f"r{i}" for i in range(n)] * 2,
        # each request's first label is the real one; a later correction (flipped) must never win
        "label": np.r_[label, np.where(label == "1", "0", "1")].tolist(),
        "ts": pa.array([at - timedelta(seconds=float(a)) for a in label_age]
                       + [at - timedelta(seconds=float(a) - 60) for a in label_age], pa.timestamp("us")),
        "ingested_at": pa.array([at] * (2 * n), pa.timestamp("us")),
    })
    cur = ctx.store.cursor()
    for name, table in (("batch", batch), ("labels_batch", labels)):
        cur.register(name, table)
    cur.execute(f"INSERT INTO {ctx.model.predictions_table} BY NAME SELECT * FROM batch")
    cur.execute("INSERT INTO labels BY NAME SELECT * FROM labels_batch")
    ref_region = rng.choice(REGIONS, 3000)
    ref_label, ref_prediction = outcomes(rng, ref_region, dict.fromkeys(REGIONS, 0.9), dict.fromkeys(REGIONS, 0.1))
    pq.write_table(pa.table({"region": ref_region, "tenure_months": rng.normal(30, 10, 3000),
                             "contract": rng.choice(["monthly", "yearly"], 3000), "label": ref_label,
                             "prediction": ref_prediction}), ctx.model.reference)

    ctx = InputContext(ctx.store, ctx.daemon, ctx.model, ctx.host, at=at)
    inputs = gather(("segments_window", "segments_reference", "fairness_counts"), ctx)
    in_window = (age >= 0) & (age <= 3600)
    known = in_window & (label_age >= 0)
    named = np.where(region == None, "(missing)", region).astype(str)  # noqa: E711
    w = inputs["segments_window"]
    assert w.volumes == {g: int((in_window & (named == g)).sum()) for g in np.unique(named[in_window])}
    assert sorted(zip(w.labelled.segment, w.labelled.y_true, w.labelled.y_pred, strict=True)) == sorted(
        zip(named[known], label[known], prediction[known], strict=True))
    assert "region" not in w.columns and len(w.segment) == in_window.sum()

    ref = inputs["segments_reference"]
    assert set(ref.profiles) == set(REGIONS) and all("region" not in p.names for p in ref.profiles.values())
    assert ref.baselines["central"].labelled == (ref_region == "central").sum()

    counted = inputs["fairness_counts"].counts
    grouped = in_window & (region != None)  # noqa: E711  (no group for a missing region)
    expected = GroupCounts.from_rows(region[grouped].astype(str), prediction[grouped],
                                     np.where(known, label, None)[grouped], "1")
    assert counted.groups == expected.groups
    for field in ("rows", "predicted_positive", "label_positive", "true_positive"):
        assert getattr(counted, field).tolist() == getattr(expected, field).tolist(), field

    segments = run_check(ctx, next(c for c in ctx.model.checks if c.name == "segments"))
    assert segments.status is Status.CRIT and "region=central" in segments.reason.split(";")[0], segments.reason
    fairness = run_check(ctx, next(c for c in ctx.model.checks if c.name == "fairness"))
    assert fairness.status in (Status.WARN, Status.CRIT) and "equal opportunity difference" in fairness.reason


CONFIG = BASE_CONFIG.replace('labels = "spool/churn/labels"', 'labels = "spool/churn/labels"\n'
                             'reference = "reference/churn.parquet"').replace(
    'contract = "string"', 'contract = "string"\nregion = "string"') + '''
[models.checks.segments]
interval = "300ms"
column = "region"
window = "1h"
min_rows = 500

[models.checks.fairness]
interval = "300ms"
protected = "region"
window = "1h"
'''


def test_the_bad_slice_is_named_and_the_disparity_flagged(short_tmp):
    rng = np.random.default_rng(1)
    handle = DaemonHandle(short_tmp, CONFIG)
    (handle.state_dir / "reference").mkdir(parents=True)
    ref_region = rng.choice(REGIONS, 6000)
    ref_label, ref_prediction = outcomes(rng, ref_region, dict.fromkeys(REGIONS, 0.9), dict.fromkeys(REGIONS, 0.1))
    pq.write_table(pa.table({"region": ref_region, "tenure_months": rng.normal(30, 10, 6000),
                             "contract": rng.choice(["monthly", "yearly"], 6000, p=[0.6, 0.4]),
                             "label": ref_label, "prediction": ref_prediction}),
                   handle.state_dir / "reference" / "churn.parquet")
    handle.start()
    try:
        region = np.repeat(REGIONS, [1200, 1200, 600])
        # central's positives are caught half as often (accuracy 0.62 against the reference's 0.9), and north is
        # predicted positive far more often than the others (0.54 against 0.42 and 0.38)
        label, prediction = outcomes(rng, region, {"north": 0.9, "south": 0.9, "central": 0.5},
                                     {"north": 0.3, "south": 0.1, "central": 0.3})
        now = time.time()
        tenure, contract = rng.normal(30, 10, region.size), rng.choice(["monthly", "yearly"], region.size, p=[0.6, 0.4])
        handle.write_predictions("churn", [
            {"ts": now - i * 0.01, "request_id": f"r{i}", "prediction": str(p),
             "features": {"tenure_months": float(t), "contract": str(c), "region": str(g)}}
            for i, (p, t, c, g) in enumerate(zip(prediction, tenure, contract, region, strict=True))])
        spool = handle.state_dir / "spool" / "churn" / "labels"
        spool.mkdir(parents=True, exist_ok=True)
        (spool / "a.jsonl").write_text("".join(f'{{"request_id": "r{i}", "label": "{y}"}}\n'
                                               for i, y in enumerate(label)))

        def judged(name: str):
            with handle.client() as client:
                churn = next(m for m in client.status()["models"] if m["name"] == "churn")
            check = next(c for c in churn["checks"] if c["check"] == name)
            return check if check["status"] in ("warn", "crit") else None

        segments = wait_for(lambda: judged("segments"), message="segments flags a slice")
        assert segments["status"] == "crit"
        central = region == "central"
        accuracy = np.mean(label[central] == prediction[central])
        baseline = np.mean((ref_label == ref_prediction)[ref_region == "central"])
        assert segments["reason"].startswith(f"2/3 slices of region off: region=central: accuracy {accuracy:.3g} "
                                             f"vs reference {baseline:.3g}"), segments["reason"]
        assert "; region=north: accuracy 0.7" in segments["reason"]  # 0.78 by design: 13 % below 0.9, warn
        fairness = wait_for(lambda: judged("fairness"), message="fairness flags the disparity")
        assert fairness["status"] == "crit"  # equal opportunity 0.9 vs 0.5 by design
        rate = {g: np.mean(prediction[region == g] == "1") for g in REGIONS}
        tpr = {g: np.mean(prediction[(region == g) & (label == "1")] == "1") for g in REGIONS}
        assert fairness["reason"].startswith(
            f"demographic parity difference {rate['north'] - rate['central']:.2f} (north {rate['north']:.2f} vs "
            f"central {rate['central']:.2f}, p<1e-6; warn at 0.1), equal opportunity difference "
            f"{max(tpr.values()) - tpr['central']:.2f}"), fairness["reason"]
    finally:
        handle.stop()
