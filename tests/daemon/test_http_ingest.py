"""HTTP ingest end to end: records POSTed to the real daemon's socket land in the store exactly once."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daemon.client import ApiError
from support import BASE_CONFIG, DaemonHandle, prediction, wait_for

CONFIG = BASE_CONFIG + """
[[models]]
name = "loans"
predictions = "spool/loans/predictions"
labels = "spool/loans/labels"

[models.checks.labels]
interval = "1s"
window = "1h"
label_age = "5s"
min_predictions = 4

[[models]]
name = "unlabelled"
predictions = "spool/unlabelled/predictions"

[models.checks.labels]
interval = "1s"
"""


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonHandle]:
    """One real daemon for the module (each test uses its own request ids): starting one per test would
    cost more than the tests."""
    root = Path(tempfile.mkdtemp(prefix="mt-", dir="/tmp"))
    handle = DaemonHandle(root, CONFIG).start()
    yield handle
    try:
        assert handle.stop() == 0  # a clean stop (kills the daemon and fails if it ignores SIGTERM)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def raw_post(daemon: DaemonHandle, path: str, content: bytes, content_type: str) -> httpx.Response:
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(daemon.socket)), base_url="http://x",
                      timeout=60) as http:
        return http.post(path, content=content, headers={"Content-Type": content_type})


def count(client, query: str) -> int:
    return client.sql(query)["rows"][0][0]


def test_batches_of_1k_rows_are_stored_when_answered_and_leave_no_file(daemon):
    with daemon.client() as client:
        for b in range(3):
            answer = client.ingest("churn", [prediction(f"bulk-{b}-{i}", tenure_months=float(i))
                                             for i in range(1000)])
            assert (answer["accepted"], answer["quarantined"], answer["duplicates"]) == (1000, 0, 0)
            assert answer["file"].startswith("http-") and answer["file"].endswith(".jsonl")
            # visible at once: the answer comes after the commit, not after the next scheduled poll
            assert count(client, "SELECT count(*) FROM predictions_churn WHERE request_id LIKE 'bulk-%'") \
                == 1000 * (b + 1)
        assert count(client, "SELECT sum(tenure_months) FROM predictions_churn "
                             "WHERE request_id LIKE 'bulk-2-%'") == sum(range(1000))
    spool = daemon.state_dir / "spool" / "churn" / "predictions"
    assert not list(spool.glob("http-*")) and not list(spool.glob(".http-*"))  # read, then removed


def test_a_bad_line_is_quarantined_and_the_rest_of_the_batch_accepted(daemon):
    lines: list[dict | str] = [prediction(f"mixed-{i}") for i in range(10)]
    lines[3] = '{"ts": "2026-01-01T00:00:00Z", "request_id": "mixed-3"'  # broken JSON
    lines[6] = prediction("mixed-6", tenure_months="lots")
    with daemon.client() as client:
        answer = client.ingest("churn", lines)
        assert (answer["accepted"], answer["quarantined"], answer["duplicates"]) == (8, 2, 0)
        assert [r["line"] for r in answer["rejected"]] == [4, 7]
        assert answer["rejected"][1]["reason"] == "tenure_months 'lots' is not a number"
        stored = client.sql("SELECT request_id FROM predictions_churn WHERE request_id LIKE 'mixed-%' ORDER BY 1")
        assert [r[0] for r in stored["rows"]] == [f"mixed-{i}" for i in (0, 1, 2, 4, 5, 7, 8, 9)]
        quarantined = client.sql(f"SELECT line, reason FROM quarantine WHERE file = '{answer['file']}' ORDER BY 1")
        assert [r[0] for r in quarantined["rows"]] == [4, 7]
        assert quarantined["rows"][0][1].startswith("broken JSON")


def test_a_resent_batch_is_answered_with_duplicates_and_adds_no_rows(daemon):
    batch = [prediction(f"again-{i}") for i in range(50)]
    with daemon.client() as client:
        assert client.ingest("churn", batch)["accepted"] == 50
        answer = client.ingest("churn", batch)
        assert (answer["accepted"], answer["quarantined"], answer["duplicates"]) == (0, 50, 50)
        assert answer["rejected"][0] == {"line": None, "reason": "duplicate request_id", "request_id": "again-0"}
        assert count(client, "SELECT count(*) FROM predictions_churn WHERE request_id LIKE 'again-%'") == 50


def test_concurrent_senders_each_get_the_count_of_their_own_batch(daemon):
    answers: list[dict] = []

    def send(n: int) -> None:
        with daemon.client() as client:
            answers.append(client.ingest("churn", [prediction(f"conc-{n}-{i}") for i in range(100 + n)]))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a["accepted"] for a in answers) == [100 + n for n in range(6)]
    with daemon.client() as client:
        assert count(client, "SELECT count(*) FROM predictions_churn WHERE request_id LIKE 'conc-%'") == 615


def test_a_json_array_body_is_accepted_and_a_broken_one_refused(daemon):
    records = [prediction(f"array-{i}") for i in range(5)]
    answer = raw_post(daemon, "/v1/ingest/churn/predictions", json.dumps(records, indent=2).encode(),
                      "application/json")
    assert answer.status_code == 200 and answer.json()["accepted"] == 5
    broken = raw_post(daemon, "/v1/ingest/churn/predictions", b'[{"request_id": "x"},', "application/json")
    assert broken.status_code == 400
    assert broken.json()["error"].startswith("the body starts with '[' but is not a JSON array")
    empty = raw_post(daemon, "/v1/ingest/churn/predictions", b"\n  \n", "application/x-ndjson")
    assert empty.status_code == 400 and "empty" in empty.json()["error"]
    form = raw_post(daemon, "/v1/ingest/churn/predictions", b"a=1", "application/x-www-form-urlencoded")
    assert form.status_code == 415 and "--data-binary" in form.json()["error"]


def test_unknown_model_and_missing_labels_spool_are_404(daemon):
    with daemon.client() as client:
        with pytest.raises(ApiError) as unknown:
            client.ingest("fraud", [prediction("x")])
        assert unknown.value.status == 404
        assert str(unknown.value) == "unknown model 'fraud'; configured models: churn, loans, unlabelled"
        with pytest.raises(ApiError) as no_labels:
            client.ingest("unlabelled", [{"request_id": "x", "label": "1"}], source="labels")
        assert no_labels.value.status == 404 and "models[].labels" in str(no_labels.value)
        with pytest.raises(ApiError) as kind:
            client.ingest("churn", [prediction("x")], source="features")
        assert kind.value.status == 404


def test_a_body_over_8_mib_is_refused_with_413_and_nothing_stored(daemon):
    big = [prediction(f"big-{i}", contract="x" * 1000) for i in range(9000)]  # ~10 MiB
    with daemon.client() as client:
        with pytest.raises(ApiError) as refused:
            client.ingest("churn", big)
        assert refused.value.status == 413 and "8 MiB" in str(refused.value)
        assert count(client, "SELECT count(*) FROM predictions_churn WHERE request_id LIKE 'big-%'") == 0
        assert client.health()["status"] == "ok"


def test_labels_sent_over_http_feed_the_labels_check(daemon):
    with daemon.client() as client:
        client.ingest("loans", [prediction(f"lab-{i}", age_s=30 + i) for i in range(8)]
                      + [prediction("too-young-to-judge")])
        answer = client.ingest("loans", [{"request_id": f"lab-{i}", "label": "1"} for i in range(3)], "labels")
        assert answer == {"accepted": 3, "quarantined": 0, "duplicates": 0, "file": answer["file"], "rejected": []}

        def judged():
            checks = {m["name"]: m["checks"] for m in client.status()["models"]}
            labels = next(c for c in checks["loans"] if c["check"] == "labels")
            return labels if "of 8 predictions" in labels["reason"] else None

        check = wait_for(judged, message="the labels check over the new rows")
        assert check["status"] == "warn"
        assert check["reason"].startswith("62% of 8 predictions 5s-60m old have no label (warn at 50%)")
        assert client.metrics("loans", "labels", "label_missing_share")["points"][-1][1] == 5 / 8
        delay = client.metrics("loans", "labels", "label_delay_p50_seconds")["points"][-1][1]
        assert 30 <= delay < 120  # the labels' ts is when they were ingested: ~31-32 s after the predictions
        unlabelled = {m["name"]: m for m in client.status()["models"]}["unlabelled"]["checks"][0]
        assert unlabelled["status"] == "insufficient_data" and unlabelled["reason"].startswith("no labels configured")
