"""HTTP ingest against spool files, the real daemon receiving both, in the same run.

    .venv/bin/python bench/http_ingest.py [--batches 200] [--seconds 20] [--batch-rows 1000] [--clients 1 4]

Generates batches of --batch-rows prediction records with 25 numeric features, then, each time on a fresh
daemon (a subprocess with its own state dir, `ingest_interval = "100ms"`):
  http    POSTs the batches to /v1/ingest/bench/predictions over the Unix socket, back to back from each of
          --clients threads, until --batches were sent or --seconds passed: rows/s (every answer comes after
          the commit, so answered rows are visible) and the batch round trip, median and p90
  files   baseline: the same batches written into the spool as files of --batch-rows rows (written under a
          temporary name and renamed into place, as a model server should), as fast as possible: rows/s from
          the first file to every row visible through the API
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.client import Client, DaemonUnreachable  # noqa: E402

FEATURES = [f"f{i}" for i in range(25)]


def generate(batches: int, rows: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    start = datetime.now(UTC) - timedelta(minutes=10)
    out = []
    for b in range(batches):
        values = rng.normal(size=(rows, len(FEATURES))).round(6).tolist()
        lines = []
        for i, row in enumerate(values):
            n = b * rows + i
            lines.append(json.dumps({
                "ts": (start + timedelta(milliseconds=n)).isoformat(), "request_id": f"r{n}", "model_version": "v1",
                "prediction": str(n % 2), "score": 0.5, "latency_ms": 7.5, "error": None,
                "features": dict(zip(FEATURES, row, strict=True))}))
        out.append(("\n".join(lines) + "\n").encode())
    return out


class Daemon:
    """The real daemon on a fresh state dir."""

    def __init__(self, work: Path, name: str) -> None:
        self.state = work / name
        self.spool = self.state / "spool"
        self.spool.mkdir(parents=True)
        self.config = work / f"{name}.toml"
        features = "\n".join(f'{f} = "double"' for f in FEATURES)
        self.config.write_text(f'[daemon]\ningest_interval = "100ms"\n[[models]]\nname = "bench"\n'
                               f'predictions = "spool"\n[models.features]\n{features}\n')
        self.log = open(work / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "daemon", "--config", str(self.config),
                                      "--state-dir", str(self.state)], cwd=REPO, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.socket = self.state / "modeltop.sock"
        deadline = time.monotonic() + 30
        while True:
            try:
                with Client(self.socket) as client:
                    client.health()
                break
            except DaemonUnreachable:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"daemon did not start; see {self.log.name}") from None
                time.sleep(0.1)

    def rows(self, client: Client) -> int:
        return client.sql("SELECT count(*) FROM predictions_bench")["rows"][0][0]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def http_run(work: Path, batches: list[bytes], seconds: float, clients: int) -> dict[str, float]:
    daemon = Daemon(work, f"http-{clients}")
    todo: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for batch in batches:
        todo.put(batch)
    latencies: list[float] = []
    accepted = [0] * clients
    failures: list[str] = []
    started = time.perf_counter()
    deadline = started + seconds

    def sender(k: int) -> None:
        with Client(daemon.socket, timeout=60) as client:
            while time.perf_counter() < deadline:
                try:
                    batch = todo.get_nowait()
                except queue.Empty:
                    return
                sent = time.perf_counter()
                answer = client._call("POST", "/v1/ingest/bench/predictions", content=batch,
                                      headers={"Content-Type": "application/x-ndjson"}, timeout=60)
                latencies.append(time.perf_counter() - sent)
                if answer.get("quarantined"):
                    failures.append(json.dumps(answer)[:300])
                accepted[k] += answer.get("accepted") or 0

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    with Client(daemon.socket) as client:
        stored = daemon.rows(client)
    daemon.stop()
    assert not failures, failures[:3]
    assert stored == sum(accepted), (stored, accepted)
    return {"batches": len(latencies), "rows": stored, "seconds": elapsed, "rows_per_s": stored / elapsed,
            "latency_p50_ms": statistics.median(latencies) * 1000,
            "latency_p90_ms": float(np.percentile(latencies, 90)) * 1000}


def file_run(work: Path, batches: list[bytes]) -> dict[str, float]:
    daemon = Daemon(work, "files")
    spool = daemon.spool
    total = sum(b.count(b"\n") for b in batches)
    with Client(daemon.socket) as client:
        started = time.perf_counter()
        for i, batch in enumerate(batches):
            temp = spool / f".batch-{i:06d}.tmp"
            temp.write_bytes(batch)
            os.rename(temp, spool / f"batch-{i:06d}.jsonl")
        written = time.perf_counter() - started
        while (stored := daemon.rows(client)) < total:
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"only {stored} of {total} rows after 600 s")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    daemon.stop()
    return {"batches": len(batches), "rows": total, "seconds": elapsed, "rows_per_s": total / elapsed,
            "write_s": written}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (daemon logs)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="mt-bench-", dir="/tmp"))  # short: socket path limit
    work.mkdir(parents=True, exist_ok=True)
    try:
        batches = generate(args.batches, args.batch_rows)
        size = statistics.median(len(b) for b in batches)
        print(f"{args.batches} batches of {args.batch_rows} rows, 25 features, {size / 2**10:.0f} KiB each; "
              f"HTTP runs stop after {args.seconds:g} s")
        print(f"{'path':24} {'batches':>8} {'rows':>8} {'seconds':>8} {'rows/s':>9} {'p50 ms':>7} {'p90 ms':>7}")
        sent = args.batches
        for clients in args.clients:
            r = http_run(work, batches, args.seconds, clients)
            sent = min(sent, int(r["batches"]))
            print(f"{f'http, {clients} client(s)':24} {r['batches']:8.0f} {r['rows']:8.0f} {r['seconds']:8.2f} "
                  f"{r['rows_per_s']:9,.0f} {r['latency_p50_ms']:7.1f} {r['latency_p90_ms']:7.1f}")
        r = file_run(work, batches[:sent])
        print(f"{'files (baseline)':24} {r['batches']:8.0f} {r['rows']:8.0f} {r['seconds']:8.2f} "
              f"{r['rows_per_s']:9,.0f} {'':>7} {'':>7}   (files written in {r['write_s']:.2f} s)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
