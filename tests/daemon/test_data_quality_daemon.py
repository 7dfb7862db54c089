"""data_quality in the daemon: the window counted in DuckDB against the reference file."""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from support import BASE_CONFIG, DaemonHandle, wait_for

CONFIG = BASE_CONFIG.replace('labels = "spool/churn/labels"', 'labels = "spool/churn/labels"\n'
                             'reference = "reference/churn.parquet"') + '''
[models.checks.data_quality]
interval = "500ms"
window = "1h"
'''


def test_nulls_out_of_range_and_unseen_categories_are_named(short_tmp):
    handle = DaemonHandle(short_tmp, CONFIG)
    rng = np.random.default_rng(3)
    (handle.state_dir / "reference").mkdir(parents=True)
    pq.write_table(pa.table({"tenure_months": rng.uniform(0, 72, 3000),
                             "contract": rng.choice(["monthly", "yearly"], 3000)}),
                   handle.state_dir / "reference" / "churn.parquet")
    handle.start()
    try:
        now = time.time()
        records = []
        for i in range(400):
            tenure = None if i % 4 == 0 else (500.0 if i % 10 == 1 else float(i % 70) + 1)
            contract = "lifetime" if i % 20 == 3 else "monthly"
            records.append({"ts": now - i, "request_id": f"r{i}",
                            "features": {"tenure_months": tenure, "contract": contract}})
        handle.write_predictions("churn", records)

        def judged():
            with handle.client() as client:
                churn = next(m for m in client.status()["models"] if m["name"] == "churn")
            check = next(c for c in churn["checks"] if c["check"] == "data_quality")
            return check if check["status"] in ("warn", "crit") else None

        result = wait_for(judged, message="data_quality alarm")
        assert result["status"] == "crit"
        assert "tenure_months empty in 25.0% of rows (training 0.0%)" in result["reason"]
        with handle.client() as client:
            rows = client.sql("""SELECT metric, dims, value FROM metrics WHERE "check" = 'data_quality'
                                 AND metric IN ('out_of_range_share', 'unseen_share')
                                 ORDER BY ts DESC LIMIT 2""")["rows"]
        shares = {(m, json.loads(d)["feature"]): v for m, d, v in rows}
        assert abs(shares[("out_of_range_share", "tenure_months")] - 40 / 300) < 1e-9
        assert shares[("unseen_share", "contract")] == 20 / 400
    finally:
        handle.stop()
