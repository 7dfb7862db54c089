"""The drift check in the daemon: reference profile from the model's reference file, window from the store."""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from support import BASE_CONFIG, DaemonHandle, wait_for

CONFIG = BASE_CONFIG.replace('labels = "spool/churn/labels"', 'labels = "spool/churn/labels"\n'
                             'reference = "reference/churn.parquet"') + '''
[models.checks.drift]
interval = "500ms"
window = "1h"
min_rows = 1000
'''


def drift_status(handle: DaemonHandle) -> dict | None:
    with handle.client() as client:
        churn = next(m for m in client.status()["models"] if m["name"] == "churn")
    check = next(c for c in churn["checks"] if c["check"] == "drift")
    return check if check["status"] not in ("pending",) else None


def test_drift_is_found_in_the_shifted_feature_only(short_tmp):
    handle = DaemonHandle(short_tmp, CONFIG)
    rng = np.random.default_rng(1)
    (handle.state_dir / "reference").mkdir(parents=True)
    pq.write_table(pa.table({"tenure_months": rng.normal(30, 10, 5000),
                             "contract": rng.choice(["monthly", "yearly"], 5000, p=[0.6, 0.4]),
                             "label": rng.integers(0, 2, 5000)}), handle.state_dir / "reference" / "churn.parquet")
    handle.start()
    try:
        first = wait_for(lambda: drift_status(handle), message="first drift run")
        assert first["status"] == "insufficient_data"  # no window yet
        tenure = rng.normal(36, 10, 2000)  # +0.6 sd
        contract = rng.choice(["monthly", "yearly"], 2000, p=[0.6, 0.4])
        handle.write_predictions("churn", [
            {"ts": time.time() - i * 0.01, "request_id": f"r{i}",
             "features": {"tenure_months": float(t), "contract": str(c)}}
            for i, (t, c) in enumerate(zip(tenure, contract, strict=True))])
        result = wait_for(lambda: (s := drift_status(handle)) and s["status"] in ("warn", "crit") and s,
                          message="drift detected")
        assert "tenure_months" in result["reason"] and "contract" not in result["reason"]
        with handle.client() as client:
            rows = client.sql("""SELECT dims, value FROM metrics WHERE "check" = 'drift' AND metric = 'drifted'
                                 ORDER BY ts DESC LIMIT 2""")["rows"]
        assert {json.loads(d)["feature"]: v for d, v in rows} == {"tenure_months": 1.0, "contract": 0.0}
    finally:
        handle.stop()
