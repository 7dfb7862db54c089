"""performance in the daemon: predictions joined with the labels known now, never a later one."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from support import BASE_CONFIG, DaemonHandle, wait_for

CONFIG = BASE_CONFIG.replace('labels = "spool/churn/labels"', 'labels = "spool/churn/labels"\n'
                             'reference = "reference/churn.parquet"') + '''
[models.checks.performance]
interval = "300ms"
min_labelled = 50
'''


def test_accuracy_against_the_reference_and_point_in_time_labels(short_tmp):
    handle = DaemonHandle(short_tmp, CONFIG)
    (handle.state_dir / "reference").mkdir(parents=True)
    # the reference carries the model's validation predictions: 90 % right
    pq.write_table(pa.table({"tenure_months": [1.0] * 100, "label": ["1"] * 100,
                             "prediction": ["1"] * 90 + ["0"] * 10}),
                   handle.state_dir / "reference" / "churn.parquet")
    handle.start()
    try:
        now = time.time()
        handle.write_predictions("churn", [{"ts": now - i, "request_id": f"r{i}", "prediction": "1"}
                                           for i in range(100)])
        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        labels = [{"request_id": f"r{i}", "label": "1" if i < 60 else "0"} for i in range(100)]
        labels += [{"request_id": f"r{i}", "label": "0", "ts": later} for i in range(60)]  # known only tomorrow
        spool = handle.state_dir / "spool" / "churn" / "labels"
        spool.mkdir(parents=True, exist_ok=True)
        (spool / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labels))

        def judged():
            with handle.client() as client:
                churn = next(m for m in client.status()["models"] if m["name"] == "churn")
            check = next(c for c in churn["checks"] if c["check"] == "performance")
            return check if check["status"] in ("ok", "warn", "crit") else None

        result = wait_for(judged, message="performance judged")
        # 60 of 100 right with today's labels (tomorrow's corrections are not seen): 0.6 vs 0.9 = 33 % worse
        assert result["status"] == "crit"
        assert result["reason"].startswith("accuracy 0.6 on 100 labelled predictions, baseline 0.9")
    finally:
        handle.stop()
