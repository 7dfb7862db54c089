"""The demo simulator as the daemon and a demo user see it: spool files, their records, labels and drift."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from daemon.demo.simulator import CHURN_FEATURES, DIABETES_FEATURES, DemoModel, Simulator, train_models

REPO = Path(__file__).resolve().parents[2]
START = 1_700_000_000.0  # 2023-11-14T22:13:20Z: 90 s from here crosses a minute boundary
SECONDS = 90
DELAY = 20.0


@pytest.fixture(scope="module")
def models() -> dict[str, DemoModel]:
    return train_models(0)


def simulate(root: Path, models: dict[str, DemoModel], *, seconds: float = SECONDS, step: float = 1.0,
             drift_after: float | None = None, rate: float = 20.0) -> Simulator:
    sim = Simulator(root / "spool", root / "reference", rate=rate, seed=0, drift_after=drift_after,
                    label_delay=DELAY, start=START, models=models)
    with sim:
        for t in np.arange(step, seconds + step / 2, step):
            sim.step(START + float(t))
    return sim


def read(root: Path, model: str, kind: str) -> list[dict]:
    files = sorted((root / "spool" / model / kind).glob("*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def module_env() -> dict[str, str]:
    """The repo on the path whether or not the package is installed in the venv."""
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def epoch(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


@pytest.fixture(scope="module")
def run90(tmp_path_factory: pytest.TempPathFactory, models: dict[str, DemoModel]) -> Path:
    root = tmp_path_factory.mktemp("sim")
    simulate(root, models)
    return root


def test_prediction_files_rotate_each_minute_with_sortable_names(run90: Path) -> None:
    for model in ("churn", "diabetes"):
        names = sorted(p.name for p in (run90 / "spool" / model / "predictions").iterdir())
        assert names == ["predictions-20231114T2213.jsonl", "predictions-20231114T2214.jsonl"]
        labels = sorted(p.name for p in (run90 / "spool" / model / "labels").iterdir())
        assert labels[0] == "labels-20231114T2213.jsonl"  # first labels due at 22:13:40
        for f in (run90 / "spool" / model / "predictions").iterdir():
            text = f.read_text()
            assert text.endswith("\n")
            minute = f.name.removeprefix("predictions-").removesuffix(".jsonl")
            assert all(datetime.fromisoformat(json.loads(line)["ts"]).strftime("%Y%m%dT%H%M") == minute
                       for line in text.splitlines())


@pytest.mark.parametrize("model, features", [("churn", CHURN_FEATURES), ("diabetes", DIABETES_FEATURES)])
def test_prediction_records_have_documented_fields(run90: Path, model: str, features: tuple) -> None:
    records = read(run90, model, "predictions")
    assert 0.8 * 20 * SECONDS < len(records) < 1.2 * 20 * SECONDS
    for r in records:
        expected = {"ts", "request_id", "model_version", "features", "prediction", "latency_ms", "error"}
        assert set(r) == expected | ({"score"} if model == "churn" else set())
        ts = datetime.fromisoformat(r["ts"])
        assert r["ts"].endswith("+00:00") and "." in r["ts"] and ts.utcoffset().total_seconds() == 0
        assert START < ts.timestamp() <= START + SECONDS
        assert r["request_id"].startswith(f"{model}-") and len(r["request_id"]) == len(model) + 33
        assert r["model_version"] == "v1"
        assert tuple(r["features"]) == features
        assert isinstance(r["latency_ms"], float) and r["latency_ms"] > 0
        assert r["error"] in (None, "timeout")
        if r["error"]:
            assert r["prediction"] is None and r.get("score") is None
        elif model == "churn":
            assert r["prediction"] in (0, 1) and type(r["prediction"]) is int
            assert 0.0 <= r["score"] <= 1.0 and r["prediction"] == int(r["score"] >= 0.5)
        else:
            assert type(r["prediction"]) is float
    ts = [epoch(r["ts"]) for r in records]
    assert ts == sorted(ts)
    assert 4 < np.median([r["latency_ms"] for r in records]) < 16


def test_churn_features_have_the_declared_types_and_ranges(run90: Path) -> None:
    for r in read(run90, "churn", "predictions"):
        f = r["features"]
        assert type(f["tenure_months"]) is float and 0 <= f["tenure_months"] <= 72
        assert type(f["monthly_charges"]) is float and 18 <= f["monthly_charges"] <= 120
        assert type(f["support_calls"]) is int and 0 <= f["support_calls"] <= 10
        assert f["contract"] in ("month-to-month", "one-year", "two-year")
        assert f["region"] in ("north", "south", "east", "west")
    for r in read(run90, "diabetes", "predictions"):
        assert all(type(v) is float for v in r["features"].values())


def test_request_ids_are_unique_across_models(run90: Path) -> None:
    ids = [r["request_id"] for m in ("churn", "diabetes") for r in read(run90, m, "predictions")]
    assert len(ids) == len(set(ids))


def test_labels_arrive_after_the_delay_and_join_to_predictions(run90: Path) -> None:
    for model in ("churn", "diabetes"):
        predictions = {r["request_id"]: r for r in read(run90, model, "predictions")}
        labels = read(run90, model, "labels")
        assert all(set(lab) == {"request_id", "label", "ts"} for lab in labels)
        assert all(lab["request_id"] in predictions for lab in labels)
        assert len({lab["request_id"] for lab in labels}) == len(labels)
        for lab in labels:
            predicted_at = epoch(predictions[lab["request_id"]]["ts"])
            assert epoch(lab["ts"]) == pytest.approx(predicted_at + DELAY, abs=1e-5)
            assert epoch(lab["ts"]) <= START + SECONDS
        # only predictions older than the delay can have labels; of those, most (not all) do
        old = [r for r in predictions.values() if epoch(r["ts"]) + DELAY <= START + SECONDS]
        assert 0.8 * len(old) < len(labels) < len(old)
        assert all(type(lab["label"]) is (int if model == "churn" else float) for lab in labels)


def test_churn_predictions_beat_chance(run90: Path) -> None:
    predictions = {r["request_id"]: r["prediction"] for r in read(run90, "churn", "predictions")}
    pairs = [(predictions[lab["request_id"]], lab["label"]) for lab in read(run90, "churn", "labels")]
    accuracy = np.mean([p == y for p, y in pairs])
    assert accuracy > 0.6
    assert {y for _, y in pairs} == {0, 1}


def test_output_depends_on_clock_not_on_step_size(tmp_path: Path, models: dict[str, DemoModel]) -> None:
    simulate(tmp_path / "coarse", models, seconds=30, step=30.0)
    simulate(tmp_path / "fine", models, seconds=30, step=0.1)
    for model in ("churn", "diabetes"):
        for kind in ("predictions", "labels"):
            assert read(tmp_path / "coarse", model, kind) == read(tmp_path / "fine", model, kind)


def test_drift_moves_charges_and_brings_a_new_region(tmp_path: Path, models: dict[str, DemoModel]) -> None:
    simulate(tmp_path, models, seconds=120, step=5.0, drift_after=60.0)
    before, after = [], []
    for r in read(tmp_path, "churn", "predictions"):
        (after if epoch(r["ts"]) >= START + 60 else before).append(r["features"])
    charges_before = np.mean([f["monthly_charges"] for f in before])
    charges_after = np.mean([f["monthly_charges"] for f in after])
    assert charges_after - charges_before > 15
    assert not any(f["region"] == "central" for f in before)
    assert 0.1 < np.mean([f["region"] == "central" for f in after]) < 0.3


def test_reference_parquet_has_features_and_label(run90: Path) -> None:
    churn = pq.read_table(run90 / "reference" / "churn.parquet")
    assert churn.column_names == [*CHURN_FEATURES, "label", "prediction", "score"]  # the model's own outputs too
    assert churn.num_rows >= 1000
    assert set(churn.column("label").to_pylist()) == {0, 1}
    assert set(churn.column("contract").to_pylist()) == {"month-to-month", "one-year", "two-year"}
    assert str(churn.schema.field("support_calls").type) == "int64"
    diabetes = pq.read_table(run90 / "reference" / "diabetes.parquet")
    assert diabetes.column_names == [*DIABETES_FEATURES, "label", "prediction"]
    assert diabetes.num_rows == 4000  # noisy resamples of the 442-row dataset, like the served traffic


def test_reference_dir_defaults_beside_the_spool_root(tmp_path: Path, models: dict[str, DemoModel]) -> None:
    Simulator(tmp_path / "spool", models=models).close()
    assert (tmp_path / "reference" / "churn.parquet").is_file()
    assert (tmp_path / "reference" / "diabetes.parquet").is_file()


def test_module_runs_for_given_seconds_and_exits_cleanly(tmp_path: Path) -> None:
    env = module_env()
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.demo.simulator", "--spool-root", str(tmp_path / "spool"),
         "--seconds", "2", "--rate", "50", "--label-delay", "0.5"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and str(tmp_path / "spool") in proc.stderr
    for model in ("churn", "diabetes"):
        lines = [json.loads(line) for f in (tmp_path / "spool" / model / "predictions").glob("*.jsonl")
                 for line in f.read_text().splitlines()]
        assert len(lines) > 20
        assert list((tmp_path / "spool" / model / "labels").glob("labels-*.jsonl"))
    assert (tmp_path / "reference" / "churn.parquet").is_file()


def test_module_stops_on_sigterm_with_exit_0(tmp_path: Path) -> None:
    env = module_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.demo.simulator", "--spool-root", str(tmp_path / "spool")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        proc.stderr.readline()  # the start line: models trained, signal handlers installed
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list((tmp_path / "spool" / "churn" / "predictions").glob("*.jsonl"))
