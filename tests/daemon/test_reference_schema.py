"""A model without declared features takes its schema from the reference data (the target left out)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from support import DaemonHandle, prediction, wait_for

CONFIG = """
[daemon]
ingest_interval = "200ms"

[[models]]
name = "churn"
predictions = "spool/churn/predictions"
reference = "reference/churn.parquet"
target = "churned"
"""


def test_features_come_from_the_reference_file(short_tmp):
    handle = DaemonHandle(short_tmp, CONFIG)
    (handle.state_dir / "reference").mkdir(parents=True)
    pq.write_table(pa.table({"tenure_months": [1.5, 2.0], "support_calls": pa.array([1, 2], pa.int32()),
                             "contract": ["one-year", "monthly"], "vip": [True, False], "churned": [0, 1]}),
                   handle.state_dir / "reference" / "churn.parquet")
    handle.start()
    try:
        handle.write_predictions("churn", [prediction("r1", support_calls="3", vip=True)])
        with handle.client() as client:
            wait_for(lambda: client.sql("SELECT count(*) FROM predictions_churn")["rows"][0][0] == 1,
                     message="ingest")
            columns = dict(client.sql("""SELECT column_name, data_type FROM information_schema.columns
                                         WHERE table_name = 'predictions_churn'""")["rows"])
            row = client.sql("SELECT tenure_months, support_calls, contract, vip FROM predictions_churn")["rows"]
        assert {k: columns[k] for k in ("tenure_months", "support_calls", "contract", "vip")} == {
            "tenure_months": "DOUBLE", "support_calls": "BIGINT", "contract": "VARCHAR", "vip": "BOOLEAN"}
        assert "churned" not in columns  # the target is not a feature
        assert row == [[12.0, 3, "one-year", True]]
    finally:
        handle.stop()
