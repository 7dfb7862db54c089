"""multivariate_drift in the daemon: the reference file prepared once, the window read from the store, and a
correlation that flips (every feature's own distribution unchanged) reported with the features that carry it."""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from support import BASE_CONFIG, DaemonHandle, wait_for

CONFIG = BASE_CONFIG.replace('labels = "spool/churn/labels"', 'labels = "spool/churn/labels"\n'
                             'reference = "reference/churn.parquet"').replace(
    'contract = "string"', 'contract = "string"\nmonthly_charges = "double"') + '''
[models.checks.multivariate_drift]
interval = "1s"
window = "1h"
min_rows = 1000
sample_size = 2000
'''


def charges(rng: np.random.Generator, tenure: np.ndarray, rho: float) -> np.ndarray:
    """Monthly charges correlated `rho` with tenure; the same normal(70, 20) marginal for any rho."""
    z = (tenure - 30) / 10
    return 70 + 20 * (rho * z + np.sqrt(1 - rho**2) * rng.normal(size=tenure.size))


def check_status(handle: DaemonHandle) -> dict | None:
    with handle.client() as client:
        churn = next(m for m in client.status()["models"] if m["name"] == "churn")
    check = next(c for c in churn["checks"] if c["check"] == "multivariate_drift")
    return check if check["status"] != "pending" else None


def test_a_flipped_correlation_is_reported_with_its_features(short_tmp):
    handle = DaemonHandle(short_tmp, CONFIG)
    rng = np.random.default_rng(1)
    (handle.state_dir / "reference").mkdir(parents=True)
    tenure = rng.normal(30, 10, 5000)
    pq.write_table(pa.table({"tenure_months": tenure, "monthly_charges": charges(rng, tenure, 0.8),
                             "contract": rng.choice(["monthly", "yearly"], 5000, p=[0.6, 0.4]),
                             "label": rng.integers(0, 2, 5000)}), handle.state_dir / "reference" / "churn.parquet")
    handle.start()
    try:
        first = wait_for(lambda: check_status(handle), message="first multivariate_drift run")
        assert first["status"] == "insufficient_data"  # no window yet
        tenure = rng.normal(30, 10, 2000)
        flipped = charges(rng, tenure, -0.8)
        contract = rng.choice(["monthly", "yearly"], 2000, p=[0.6, 0.4])
        handle.write_predictions("churn", [
            {"ts": time.time() - i * 0.01, "request_id": f"r{i}",
             "features": {"tenure_months": float(t), "monthly_charges": float(m), "contract": str(c)}}
            for i, (t, m, c) in enumerate(zip(tenure, flipped, contract, strict=True))])
        result = wait_for(lambda: (s := check_status(handle)) and s["status"] in ("warn", "crit") and s,
                          timeout=30, message="multivariate drift detected")
        assert result["status"] == "crit", result["reason"]
        assert result["reason"].startswith("multivariate drift in 3 features (2000 rows vs 2000 of the reference): "
                                           "domain classifier AUC "), result["reason"]
        named = result["reason"].split("separating features: ")[1].split(";")[0].split(", ")
        assert sorted(named) == ["monthly_charges", "tenure_months"], result["reason"]
        with handle.client() as client:
            rows = client.sql("""SELECT metric, dims, value FROM metrics WHERE "check" = 'multivariate_drift'
                                 AND metric IN ('auc', 'auc_drop') ORDER BY ts DESC LIMIT 4""")["rows"]
        values = {(metric, json.loads(dims).get("feature")): value for metric, dims, value in rows}
        assert values[("auc", None)] > 0.75
        assert values[("auc_drop", "contract")] < 0.01 < values[("auc_drop", "tenure_months")]
    finally:
        handle.stop()
