"""prediction_drift and label_drift in the daemon: baselines from the reference file or the model's own
history, labels counted only once they have arrived."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from support import BASE_CONFIG, DaemonHandle, wait_for

CONFIG = BASE_CONFIG.replace('labels = "spool/churn/labels"', 'labels = "spool/churn/labels"\n'
                             'reference = "reference/churn.parquet"') + '''
[models.checks.prediction_drift]
interval = "500ms"

[models.checks.label_drift]
interval = "500ms"
window = "1h"

[[models]]
name = "price"
task = "regression"
predictions = "spool/price/predictions"
labels = "spool/price/labels"
reference = "reference/price.parquet"   # features only: outputs and labels fall back to history

[models.features]
area = "double"

[models.checks.prediction_drift]
interval = "500ms"
window = "1h"
history = "1d"

[models.checks.label_drift]
interval = "500ms"
window = "1h"
'''
N = 3000


def judged(handle: DaemonHandle, model: str, check: str) -> dict | None:
    with handle.client() as client:
        entry = next(m for m in client.status()["models"] if m["name"] == model)
    result = next(c for c in entry["checks"] if c["check"] == check)
    return result if result["status"] not in ("pending",) else None


def iso(seconds_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


def test_outputs_and_labels_against_the_reference_and_history(short_tmp):
    handle = DaemonHandle(short_tmp, CONFIG)
    rng = np.random.default_rng(7)
    (handle.state_dir / "reference").mkdir(parents=True)
    # the reference: 30 % churners, predicted at about that rate with scores around 0.3
    truth = rng.random(N) < 0.3
    pq.write_table(pa.table({"tenure_months": rng.normal(30, 10, N), "label": truth.astype(int).astype(str),
                             "prediction": np.where(rng.random(N) < 0.3, "1", "0"),
                             "score": rng.beta(3, 7, N)}), handle.state_dir / "reference" / "churn.parquet")
    pq.write_table(pa.table({"area": np.random.default_rng(8).normal(100, 15, N)}),
                   handle.state_dir / "reference" / "price.parquet")
    handle.start()
    try:
        # now: half the customers predicted to churn, scores higher, and half of them really churn
        handle.write_predictions("churn", [
            {"ts": iso(i * 0.5), "request_id": f"c{i}", "prediction": "1" if i % 2 else "0",
             "score": float(s), "features": {"tenure_months": 30.0}}
            for i, s in enumerate(rng.beta(5, 5, N))])
        labels = [{"request_id": f"c{i}", "label": "1" if i % 2 else "0", "ts": iso(0)} for i in range(N)]
        # corrections that arrive tomorrow are not known today: they would make every label "0"
        labels += [{"request_id": f"c{i}", "label": "0", "ts": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
                   for i in range(N)]
        spool = handle.state_dir / "spool" / "churn" / "labels"
        spool.mkdir(parents=True, exist_ok=True)
        (spool / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labels))

        # price: its reference has no outputs or labels; the last hour looks like the day before it
        area = rng.normal(100, 15, 2 * N)
        handle.write_predictions("price", [
            {"ts": iso(60 + i * 1.1 if i < N else 3700 + (i - N) * 20), "request_id": f"p{i}",
             "prediction": float(a * 3 + rng.normal(0, 5)), "features": {"area": float(a)}}
            for i, a in enumerate(area)])

        outputs = wait_for(lambda: (r := judged(handle, "churn", "prediction_drift")) and r["status"] == "crit" and r,
                           timeout=30, message="churn prediction drift")
        assert outputs["reason"].startswith("drift in 2/2 outputs: ")
        assert "prediction ('0' 70.7%→50.0%" in outputs["reason"] and "score (mean 0.299→0.503" in outputs["reason"]
        labels_result = wait_for(lambda: (r := judged(handle, "churn", "label_drift")) and r["status"] == "crit"
                                 and r, timeout=30, message="churn label drift")
        # only today's labels: half churned (tomorrow's corrections would make it none)
        assert re.match(r"drift in 1/1 label: label \('0' 7\d\.\d%→50\.0%", labels_result["reason"])

        history = wait_for(lambda: (r := judged(handle, "price", "prediction_drift")) and r["status"] == "ok" and r,
                           timeout=30, message="price judged against its history")
        assert history["reason"] == f"no drift in 1 output ({N} rows)"
        no_labels = judged(handle, "price", "label_drift")
        assert no_labels["status"] == "insufficient_data"
        assert no_labels["reason"] == "no baseline: no labelled predictions in the 7d before the window to compare with"
    finally:
        handle.stop()
