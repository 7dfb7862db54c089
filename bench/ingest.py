"""Spool ingest against bare DuckDB on the same files, in the same run.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--runs 3] [--keep DIR]

Generates N prediction rows with 25 numeric features as JSONL and as Parquet (with DuckDB, so generation
is not what is measured), then for each format measures, median of --runs:
  bare      INSERT INTO t SELECT * FROM read_json(...) / read_parquet(...) into a fresh table
  modeltop  SpoolReader.poll() on a spool holding the file: validation, dedup, offsets, one transaction
and prints rows/s and the ratio (target: modeltop >= 60 % of bare). Then the real daemon, as a subprocess,
ingests the JSONL spool while its RSS is sampled (target: peak under 1 GB), and the store's size per
million rows is reported (retention is sized from it).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.config import ModelConfig  # noqa: E402
from daemon.ingest import SpoolReader  # noqa: E402
from daemon.store.db import Store, ensure_model_tables  # noqa: E402

FEATURES = {f"f{i}": "DOUBLE" for i in range(25)}


def generate(root: Path, rows: int) -> dict[str, Path]:
    features = ", ".join(f"round(random() * 10 - 5, 6) AS f{i}" for i in range(25))
    query = f"""SELECT strftime(TIMESTAMP '2026-11-01' + INTERVAL (i * 10) MILLISECOND, '%Y-%m-%dT%H:%M:%S.%f')
                       || '+00:00' AS ts,
                       'r' || i AS request_id, 'v1' AS model_version, (i % 2)::VARCHAR AS prediction,
                       random() AS score, 5 + random() * 10 AS latency_ms, NULL::VARCHAR AS error, {features}
                FROM range({rows}) t(i)"""
    con = duckdb.connect()
    out = {".jsonl": root / "gen" / "p.jsonl", ".parquet": root / "gen" / "p.parquet"}
    out[".jsonl"].parent.mkdir(parents=True)
    con.execute(f"COPY ({query}) TO '{out['.jsonl']}' (FORMAT json)")
    con.execute(f"COPY ({query}) TO '{out['.parquet']}' (FORMAT parquet)")
    return out


def bare(path: Path, work: Path) -> float:
    db = work / "bare.duckdb"
    con = duckdb.connect(str(db))
    reader = "read_json" if path.suffix == ".jsonl" else "read_parquet"
    started = time.perf_counter()
    con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}('{path}') LIMIT 0")
    con.execute(f"INSERT INTO t SELECT * FROM {reader}('{path}')")
    elapsed = time.perf_counter() - started
    con.close()
    db.unlink()
    return elapsed


def modeltop(path: Path, work: Path) -> tuple[float, int]:
    spool = work / "spool"
    spool.mkdir()
    shutil.copy(path, spool / path.name)
    model = ModelConfig(name="bench", task="classification", predictions=spool, labels=None, reference=None,
                        target="label", features=FEATURES, checks=())
    store = Store(work / "m.duckdb", [spool])
    with store.transaction() as cur:
        ensure_model_tables(cur, "bench", "classification", FEATURES)
    reader = SpoolReader(store, model)
    started = time.perf_counter()
    rows = 0
    while True:
        report = reader.poll()
        if not report.rows and not report.quarantined:
            break
        rows += report.rows
    elapsed = time.perf_counter() - started
    store.close()
    shutil.rmtree(spool)
    (work / "m.duckdb").unlink()
    return elapsed, rows


def daemon_run(jsonl: Path, work: Path, rows: int) -> dict[str, float]:
    """The real daemon ingesting the spool: time to all rows visible, peak RSS, store size."""
    state = work / "daemon-state"
    spool = state / "spool"
    spool.mkdir(parents=True)
    shutil.copy(jsonl, spool / jsonl.name)
    config = work / "bench.toml"
    features = "\n".join(f'f{i} = "double"' for i in range(25))
    config.write_text(f'[daemon]\ningest_interval = "100ms"\n[[models]]\nname = "bench"\npredictions = "spool"\n'
                      f"[models.features]\n{features}\n")
    proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "daemon", "--config", str(config),
                             "--state-dir", str(state)], cwd=REPO, stderr=subprocess.DEVNULL)
    process = psutil.Process(proc.pid)
    started, peak, done_at = time.perf_counter(), 0, None
    sql = [sys.executable, "-m", "daemon.cli", "--config", str(config), "--state-dir", str(state), "sql",
           "SELECT count(*) FROM predictions_bench", "--format", "csv"]
    next_probe = started + 1.0
    while time.perf_counter() - started < 300:
        peak = max(peak, process.memory_info().rss)
        if time.perf_counter() >= next_probe:
            next_probe = time.perf_counter() + 0.5
            out = subprocess.run(sql, cwd=REPO, capture_output=True, text=True).stdout.splitlines()
            if len(out) > 1 and out[1].strip() == str(rows):
                done_at = time.perf_counter() - started
                break
        time.sleep(0.05)
    proc.terminate()
    proc.wait(30)
    size = (state / "modeltop.duckdb").stat().st_size
    return {"seconds_to_visible": done_at or float("nan"), "peak_rss_mb": peak / 2**20,
            "store_mb_per_million_rows": size / 2**20 / (rows / 1e6)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="mt-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        files = generate(work, args.rows)
        print(f"{args.rows:,} rows, 25 features; JSONL {files['.jsonl'].stat().st_size / 2**20:.0f} MiB, "
              f"Parquet {files['.parquet'].stat().st_size / 2**20:.0f} MiB; median of {args.runs} runs")
        print(f"{'format':8} {'bare rows/s':>12} {'modeltop rows/s':>16} {'ratio':>7}")
        for kind, path in files.items():
            bare_s = statistics.median(bare(path, work) for _ in range(args.runs))
            timings = [modeltop(path, work) for _ in range(args.runs)]
            assert all(rows == args.rows for _, rows in timings), timings
            ours = statistics.median(t for t, _ in timings)
            print(f"{kind:8} {args.rows / bare_s:12,.0f} {args.rows / ours:16,.0f} {bare_s / ours:7.2f}")
        figures = daemon_run(files[".jsonl"], work, args.rows)
        print(f"daemon, JSONL spool: all rows visible after {figures['seconds_to_visible']:.1f} s, "
              f"peak RSS {figures['peak_rss_mb']:.0f} MiB, store {figures['store_mb_per_million_rows']:.0f} MiB "
              "per million rows")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
