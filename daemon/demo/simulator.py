"""Demo traffic simulator: real scikit-learn models serving synthetic requests into spool directories.

`modeltop demo` needs something to monitor that behaves like production without a production system: real
models (so accuracy and drift numbers mean something), JSONL logs in the layout a model server would write,
and ground truth that arrives late and incomplete, as it does in practice.

Two models are trained at start, from data generated here or shipped with scikit-learn (no downloads):

* ``churn``: binary classification on synthetic customer data (numeric and categorical features);
* ``diabetes``: regression on ``sklearn.datasets.load_diabetes``, served by resampling its rows with noise.

Files written, per model (a new file each UTC minute, so file names sort in time order)::

    <spool_root>/<model>/predictions/predictions-YYYYmmddTHHMM.jsonl
    <spool_root>/<model>/labels/labels-YYYYmmddTHHMM.jsonl
    <reference_dir>/<model>.parquet      # the training data plus the target column ``label``

Drift: ``--drift-after S`` (default 120 s, so a demo shows it after two minutes) shifts churn traffic:
``monthly_charges`` moves up by one training standard deviation and a region never seen in training,
``"central"``, takes a fifth of the traffic. ``--no-drift`` keeps the traffic stationary.

The simulator is driven by an explicit clock (`Simulator.step(now)`), so tests and the demo orchestrator
get identical output for identical seeds and times without sleeping.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MODEL_VERSION = "v1"
TICK_S = 0.25  # one batched predict per model per tick keeps CPU low at demo rates
ERROR_RATE = 0.005
LABEL_RATE = 0.9
TIMEOUT_LATENCY_MS = 1000.0
MAX_CATCH_UP_S = 600.0  # after a suspend, leave a gap (like an outage) instead of replaying hours of traffic

CHURN_FEATURES = ("tenure_months", "monthly_charges", "support_calls", "contract", "region")
CONTRACTS = ("month-to-month", "one-year", "two-year")
REGIONS = ("north", "south", "east", "west")
DRIFT_REGION = "central"
DRIFT_REGION_SHARE = 0.2
DIABETES_FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")

# Ground-truth churn process: coefficients of the log-odds, chosen for a ~30% churn rate where tenure,
# contract and support calls matter most, so a linear model learns it well but not perfectly.
_CONTRACT_EFFECT = {"month-to-month": 0.9, "one-year": -0.5, "two-year": -1.6}
_REGION_EFFECT = {"north": 0.0, "south": 0.25, "east": -0.15, "west": 0.1, DRIFT_REGION: 0.2}

Task = Literal["classification", "regression"]
Drawer = Callable[[np.random.Generator, int, bool], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class DemoModel:
    """A trained model plus the process that generates its traffic and ground truth.

    Traffic and truth come from the same generator the training data came from, so the model's quality on
    live traffic matches its training quality until drift is switched on.
    """

    name: str
    task: Task
    feature_names: tuple[str, ...]
    pipeline: Pipeline
    reference: dict[str, np.ndarray]  # training features plus "label": the baseline for drift checks
    draw: Drawer  # (rng, n, drifted) -> (X as a 2-D array in feature_names order, true targets)

    def predict(self, x: np.ndarray) -> tuple[list[Any], list[float] | None]:
        """Predictions and (for classifiers) the probability of class 1, from one batched call."""
        if self.task == "classification":
            proba = self.pipeline.predict_proba(x)[:, 1]
            return [int(p >= 0.5) for p in proba], [round(float(p), 6) for p in proba]
        return [round(float(v), 3) for v in self.pipeline.predict(x)], None


# --- churn ------------------------------------------------------------------------------------------------


def _churn_draw(rng: np.random.Generator, n: int, drifted: bool, charges_shift: float = 0.0) -> tuple[
        np.ndarray, np.ndarray]:
    """Customers and whether they churned; `drifted` moves prices up and opens a new region."""
    tenure = np.round(np.clip(rng.exponential(24.0, n), 0.0, 72.0), 1)
    charges = np.clip(rng.normal(65.0, 22.0, n), 18.0, 120.0)
    if drifted:
        charges = charges + charges_shift
    charges = np.round(charges, 2)
    calls = np.clip(rng.poisson(1.6, n), 0, 10)
    contract = rng.choice(CONTRACTS, n, p=[0.55, 0.25, 0.20])
    region = rng.choice(REGIONS, n)
    if drifted:
        region = np.where(rng.random(n) < DRIFT_REGION_SHARE, DRIFT_REGION, region)
    logit = (-0.9 - 0.06 * tenure + 0.03 * (charges - 65.0) + 0.45 * calls
             + np.array([_CONTRACT_EFFECT[c] for c in contract])
             + np.array([_REGION_EFFECT[r] for r in region]))
    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    x = np.empty((n, len(CHURN_FEATURES)), dtype=object)
    x[:, 0], x[:, 1], x[:, 2], x[:, 3], x[:, 4] = tenure, charges, calls, contract, region
    return x, label


def _churn_pipeline() -> Pipeline:
    """Raw columns in, probability out: encoding lives inside the pipeline, as a served model's would."""
    encode = ColumnTransformer([
        ("num", StandardScaler(), [0, 1, 2]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), [3, 4]),
    ])
    return Pipeline([("encode", encode), ("model", LogisticRegression(max_iter=1000))])


def _train_churn(seed: int, n: int = 5000) -> DemoModel:
    rng = np.random.default_rng([seed, 0, 0])
    x, y = _churn_draw(rng, n, drifted=False)
    pipeline = _churn_pipeline().fit(x, y)
    shift = float(np.std(x[:, 1].astype(float)))

    def draw(g: np.random.Generator, k: int, drifted: bool) -> tuple[np.ndarray, np.ndarray]:
        return _churn_draw(g, k, drifted, charges_shift=shift)

    reference = {
        "tenure_months": x[:, 0].astype(np.float64),
        "monthly_charges": x[:, 1].astype(np.float64),
        "support_calls": x[:, 2].astype(np.int64),
        "contract": x[:, 3].astype(str),
        "region": x[:, 4].astype(str),
        "label": y,
    }
    return DemoModel("churn", "classification", CHURN_FEATURES, pipeline, reference, draw)


# --- diabetes ---------------------------------------------------------------------------------------------


def _train_diabetes() -> DemoModel:
    """Unscaled values, so the TUI shows ages and blood pressures rather than centred z-scores."""
    data = load_diabetes(scaled=False)
    x, y = np.asarray(data.data, dtype=np.float64), np.asarray(data.target, dtype=np.float64)
    pipeline = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x, y)
    noise = 0.05 * x.std(axis=0)
    noise[DIABETES_FEATURES.index("sex")] = 0.0  # sex is coded 1/2: noise would invent a third value

    def draw(g: np.random.Generator, k: int, drifted: bool) -> tuple[np.ndarray, np.ndarray]:
        rows = g.integers(0, len(x), k)
        return np.round(x[rows] + g.normal(0.0, 1.0, (k, x.shape[1])) * noise, 4), y[rows]

    # The reference is what the served traffic looks like when nothing is wrong: the same resampling with
    # noise. The raw dataset has discrete columns (s4 takes a few values) that noisy traffic would
    # legitimately fail to match, and the demo's diabetes model is meant to stay healthy.
    ref_x, ref_y = draw(np.random.default_rng(12345), 4000, False)
    reference = {name: ref_x[:, i] for i, name in enumerate(DIABETES_FEATURES)} | {"label": ref_y}
    return DemoModel("diabetes", "regression", DIABETES_FEATURES, pipeline, reference, draw)


def train_models(seed: int) -> dict[str, DemoModel]:
    """Train every demo model; deterministic for a seed so two demo runs look alike."""
    return {"churn": _train_churn(seed), "diabetes": _train_diabetes()}


# --- files ------------------------------------------------------------------------------------------------


def iso(ts: float) -> str:
    """ISO-8601 UTC with an explicit +00:00 and microseconds: unambiguous for any parser."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def _minute(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M")


class _MinuteFiles:
    """Append-only JSONL files rotated each UTC minute, the layout log shippers usually produce.

    Files are unbuffered and each batch is one write() of whole lines, so a reader tailing the file sees
    complete lines except for the instant of the write itself.
    """

    def __init__(self, directory: Path, prefix: str) -> None:
        self.directory, self.prefix = directory, prefix
        self._name: str | None = None
        self._file: IO[bytes] | None = None

    def write(self, stamped_lines: Sequence[tuple[float, str]]) -> None:
        """`stamped_lines` are (ts, json) in time order; a batch may straddle a minute boundary."""
        chunk: list[str] = []
        for ts, line in stamped_lines:
            name = f"{self.prefix}-{_minute(ts)}.jsonl"
            if name != self._name:
                self._flush(chunk)
                chunk = []
                self._open(name)
            chunk.append(line)
        self._flush(chunk)

    def _open(self, name: str) -> None:
        self.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file = open(self.directory / name, "ab", buffering=0)  # one open per minute, not per tick
        self._name = name

    def _flush(self, chunk: list[str]) -> None:
        if chunk and self._file is not None:
            self._file.write("".join(chunk).encode())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._name = None, None


def write_reference(model: DemoModel, reference_dir: Path) -> Path:
    """Write atomically: the daemon may read the reference while a restarted demo rewrites it."""
    reference_dir.mkdir(parents=True, exist_ok=True)
    path = reference_dir / f"{model.name}.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    columns = dict(model.reference)
    # The model's own predictions on it, so the performance check has a baseline (on training data, hence
    # a little optimistic; a real deployment would ship validation predictions).
    n = len(columns[model.feature_names[0]])
    x = np.empty((n, len(model.feature_names)), dtype=object)
    for i, name in enumerate(model.feature_names):
        x[:, i] = columns[name]
    predictions, scores = model.predict(x if model.task == "classification" else x.astype(float))
    columns["prediction"] = predictions
    if scores is not None:
        columns["score"] = scores
    pq.write_table(pa.table(columns), tmp)
    os.replace(tmp, path)
    return path


# --- traffic ----------------------------------------------------------------------------------------------


@dataclass
class _Stream:
    """Per-model serving state: its own RNGs (so models do not perturb each other) and pending labels."""

    model: DemoModel
    rng: np.random.Generator
    ids: random.Random
    predictions: _MinuteFiles
    labels: _MinuteFiles
    pending: deque[tuple[float, str]]  # (label due time, JSON line), in due order


class Simulator:
    """Serves the demo models on an explicit clock; `step(now)` emits everything due up to `now`.

    Requests are generated per fixed tick of the simulator's own timeline (start + k * tick), not per call,
    so the output depends only on the seed, the start time and how far the clock has advanced.
    """

    def __init__(self, spool_root: Path | str, reference_dir: Path | str | None = None, rate: float = 20.0,
                 seed: int = 0, drift_after: float | None = 120.0, label_delay: float = 20.0, *,
                 start: float | None = None, tick: float = TICK_S,
                 models: dict[str, DemoModel] | None = None) -> None:
        if rate < 0 or tick <= 0 or label_delay < 0:
            raise ValueError("rate and label_delay must be >= 0 and tick > 0")
        self.spool_root = Path(spool_root)
        self.reference_dir = Path(reference_dir) if reference_dir else self.spool_root.parent / "reference"
        self.rate, self.seed, self.drift_after, self.label_delay = rate, seed, drift_after, label_delay
        self.tick = tick
        self.models = models if models is not None else train_models(seed)
        self.start: float | None = start
        self._next_tick: float | None = None if start is None else start + tick
        self._streams = [self._stream(i, m) for i, m in enumerate(self.models.values())]
        for model in self.models.values():
            write_reference(model, self.reference_dir)

    def _stream(self, index: int, model: DemoModel) -> _Stream:
        base = self.spool_root / model.name
        return _Stream(
            model=model,
            rng=np.random.default_rng([self.seed, index, 1]),
            ids=random.Random(f"{self.seed}/{index}"),
            predictions=_MinuteFiles(base / "predictions", "predictions"),
            labels=_MinuteFiles(base / "labels", "labels"),
            pending=deque(),
        )

    def step(self, now: float) -> None:
        """Emit the requests of every tick ending at or before `now`, then every label due by `now`.

        The first call only fixes the start of the timeline unless `start` was given.
        """
        if self._next_tick is None:
            self.start, self._next_tick = now, now + self.tick
        if now - self._next_tick > MAX_CATCH_UP_S:
            skipped = int((now - self._next_tick - self.tick) // self.tick)
            self._next_tick += skipped * self.tick
        while self._next_tick <= now:
            self._emit_tick(self._next_tick - self.tick, self._next_tick)
            self._next_tick += self.tick
        for stream in self._streams:
            self._emit_labels(stream, now)

    def _emit_tick(self, t0: float, t1: float) -> None:
        drifted = self._drifted(t0)
        for stream in self._streams:
            n = int(stream.rng.poisson(self.rate * self.tick))
            if n:
                self._serve(stream, np.sort(t1 - stream.rng.random(n) * (t1 - t0)), drifted)

    def _drifted(self, t: float) -> bool:
        return self.drift_after is not None and self.start is not None and t - self.start >= self.drift_after

    def _serve(self, stream: _Stream, times: np.ndarray, drifted: bool) -> None:
        """One batched predict for the tick; failures and missing labels are drawn per request."""
        model, rng = stream.model, stream.rng
        n = len(times)
        x, truth = model.draw(rng, n, drifted and model.name == "churn")
        predictions, scores = model.predict(x)
        latency = rng.lognormal(np.log(8.0), 0.35, n)
        failed = rng.random(n) < ERROR_RATE
        labelled = (rng.random(n) < LABEL_RATE) & ~failed  # a timed-out request was never served
        lines = []
        for i in range(n):
            request_id = f"{model.name}-{uuid.UUID(int=stream.ids.getrandbits(128), version=4).hex}"
            record: dict[str, Any] = {
                "ts": iso(times[i]),
                "request_id": request_id,
                "model_version": MODEL_VERSION,
                "features": _features(model.feature_names, x[i]),
                "prediction": None if failed[i] else predictions[i],
            }
            if scores is not None:
                record["score"] = None if failed[i] else scores[i]
            record["latency_ms"] = TIMEOUT_LATENCY_MS if failed[i] else round(float(latency[i]), 3)
            record["error"] = "timeout" if failed[i] else None
            lines.append((float(times[i]), json.dumps(record) + "\n"))
            if labelled[i]:
                stream.pending.append(self._label(request_id, truth[i], float(times[i]) + self.label_delay))
        stream.predictions.write(lines)

    def _label(self, request_id: str, truth: Any, due: float) -> tuple[float, str]:
        label = int(truth) if isinstance(truth, np.integer) else round(float(truth), 3)
        return due, json.dumps({"request_id": request_id, "label": label, "ts": iso(due)}) + "\n"

    def _emit_labels(self, stream: _Stream, now: float) -> None:
        due = []
        while stream.pending and stream.pending[0][0] <= now:
            due.append(stream.pending.popleft())
        if due:
            stream.labels.write(due)

    def run(self, seconds: float | None = None, stop_event: threading.Event | None = None) -> None:
        """Serve in real time until `seconds` pass or `stop_event` is set; sleeping on the event makes a
        stop request take effect within one tick."""
        stop_event = stop_event or threading.Event()
        self.step(time.time())
        assert self.start is not None
        deadline = None if seconds is None else self.start + seconds
        try:
            while not stop_event.is_set():
                now = time.time()
                if deadline is not None and now >= deadline:
                    self.step(deadline)
                    break
                self.step(now)
                stop_event.wait(self.tick)
            else:
                self.step(time.time())
        finally:
            self.close()

    def close(self) -> None:
        """Close the spool files; labels still pending are dropped, like truth that never arrives."""
        for stream in self._streams:
            stream.predictions.close()
            stream.labels.close()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _features(names: Sequence[str], row: np.ndarray) -> dict[str, Any]:
    """Native JSON types: numpy scalars would not serialise, and ints must stay ints for the store."""
    out: dict[str, Any] = {}
    for name, value in zip(names, row, strict=True):
        if isinstance(value, str | np.str_):
            out[name] = str(value)
        elif isinstance(value, int | np.integer):
            out[name] = int(value)
        else:
            out[name] = float(value)
    return out


# --- CLI --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m daemon.demo.simulator",
                                description="Serve demo scikit-learn models and spool their logs as JSONL.")
    p.add_argument("--spool-root", required=True, type=Path,
                   help="writes <root>/<model>/{predictions,labels}/")
    p.add_argument("--reference-dir", type=Path, default=None,
                   help="where <model>.parquet goes (default: 'reference' beside the spool root)")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second per model (default 20)")
    p.add_argument("--seconds", type=float, default=None,
                   help="stop after this long (default: until signalled)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drift-after", type=float, default=120.0,
                   help="seconds before churn traffic drifts (default 120: a demo shows it in two minutes)")
    p.add_argument("--no-drift", action="store_true", help="keep the traffic stationary")
    p.add_argument("--label-delay", type=float, default=20.0, help="seconds before ground truth arrives")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    drift_after = None if args.no_drift else args.drift_after
    sim = Simulator(args.spool_root, args.reference_dir, args.rate, args.seed, drift_after, args.label_delay)
    drift = "no drift" if drift_after is None else f"churn drifts after {drift_after:g}s"
    print(f"demo simulator: {', '.join(sim.models)} at {args.rate:g} req/s each -> {sim.spool_root}/<model>/"
          f"{{predictions,labels}}/, reference in {sim.reference_dir}/; labels after {args.label_delay:g}s; "
          f"{drift}", file=sys.stderr, flush=True)
    sim.run(args.seconds, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
