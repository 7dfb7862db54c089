#!/usr/bin/env python3
"""What resource sampling costs: one tick of host + 5 model processes (+ GPUs), and the idle daemon's CPU.

    .venv/bin/python bench/resources.py [--ticks 500] [--idle-seconds 60] [--json PATH]

1. Sampling ticks, median and p99 of `--ticks` ticks in microseconds, each beside a baseline measured in
   the same run: the bare psutil (or pynvml) calls the sampler makes, in a plain loop (the ratio is the
   sampler's own overhead: rates, bookkeeping, the check's evaluate):
   - host: HostSampler.sample() + the host check, watching the state dir and the demo models' 6 data dirs;
   - processes: 5 stand-in model servers (python sleeping, found by pid file, children included) sampled
     by ProcessTracker + the process check; baselines: psutil's reads alone, and psutil's reads plus
     Process.children() (which scans all of /proc, once per server);
   - GPU: NvmlSampler.sample_fast() per GPU, with live NVML when a GPU is present, else the recorded H200
     (tests/fakes/nvml.py, Python cost only: it says so);
   - the whole tick: all of the above back to back.
2. The daemon while idle: the real daemon (`python -m daemon.cli daemon`) with the repository's demo
   config.toml on a temporary state dir and no traffic, its CPU time over `--idle-seconds` (after a few
   seconds to settle), as % of one core, with its busiest threads.

Targets: idle daemon under 1% of one core; a fast GPU tick under 200 us per GPU. Finishes in about
--idle-seconds + 15 s. Exit status 0, or 1 when a section failed (the others still print).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

import daemon.inputs  # noqa: E402,F401  (registers the providers, as in the daemon)
from checks.host import HostSettings  # noqa: E402
from checks.host import evaluate as evaluate_host  # noqa: E402
from checks.process import ProcessSettings  # noqa: E402
from checks.process import evaluate as evaluate_process  # noqa: E402
from daemon.config import load_config  # noqa: E402
from daemon.sources import process as process_source  # noqa: E402
from daemon.sources.host import HostSampler, model_paths  # noqa: E402
from daemon.sources.process import ProcessSource, ProcessTracker  # noqa: E402

SERVERS = 5
SETTLE_S = 5.0


def stats_us(samples_ns: list[int], per: int = 1) -> dict[str, float]:
    if not samples_ns:
        return {"n": 0, "median_us": float("nan"), "p99_us": float("nan")}
    values = sorted(ns / 1000.0 / per for ns in samples_ns)
    p99 = values[min(len(values) - 1, max(0, round(0.99 * len(values)) - 1))]
    return {"n": len(values), "median_us": round(statistics.median(values), 1), "p99_us": round(p99, 1)}


def timed(fn: Callable[[], Any], n: int) -> list[int]:
    fn()  # warm: first-call imports and caches are not what a tick costs
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t0)
    return out


def row(name: str, s: dict[str, float], base: dict[str, float] | None = None, note: str = "") -> str:
    ratio = f"x{s['median_us'] / base['median_us']:.2f} vs bare" if base and base["median_us"] > 0 else ""
    return f"  {name:<34} {s['n']:>5} {s['median_us']:>10.1f} {s['p99_us']:>10.1f}   {ratio}{note}"


# -- ticks ------------------------------------------------------------------------------------------


def bare_host(paths: list[Path]) -> Callable[[], None]:
    """The psutil/os calls HostSampler.sample() makes, nothing else."""
    strs = [str(p if p.exists() else p.parent) for p in paths]

    def run() -> None:
        psutil.cpu_times(percpu=True)
        psutil.virtual_memory()
        psutil.swap_memory()
        os.getloadavg()
        for p in strs:
            os.stat(p)
            psutil.disk_usage(p)
        psutil.disk_io_counters(perdisk=True)
        psutil.net_io_counters(pernic=True)

    return run


def bare_processes(pid_files: list[Path], children: bool) -> Callable[[], None]:
    """Per server: read its pid file, then psutil's reads on a cached Process; with `children`, the
    obvious way to add them (Process.children(recursive=True): one scan of /proc per server)."""
    procs = {int(p.read_text()): psutil.Process(int(p.read_text())) for p in pid_files}

    def run() -> None:
        for path in pid_files:
            proc = procs[int(path.read_text().split()[0])]
            for p in (proc, *(proc.children(recursive=True) if children else ())):
                with p.oneshot():
                    p.status()
                    p.create_time()
                    p.cpu_times()
                    p.memory_info()
                    p.num_threads()
                    p.num_fds()

    return run


def gpu_sampler() -> tuple[Any, Any, str]:
    """(sampler, nvml module, where from): live NVML with a GPU, else the recorded H200 fake."""
    from daemon.sources.nvml import NvmlSampler

    why = ""
    try:
        import pynvml

        sampler = NvmlSampler(pynvml)
        if sampler.sample_fast():
            return sampler, pynvml, "live NVML"
        why = sampler.unavailable_reason or "no GPU"
        sampler.close()
    except ImportError as exc:
        why = f"pynvml not importable: {exc}"
    from tests.fakes.nvml import FakeNvml

    fake = FakeNvml(sleep=False)
    return (NvmlSampler(fake), fake,
            f"FAKE: the recorded H200 (tests/fakes/nvml.py), Python cost only, no NVML time ({why})")


def bare_gpu(sampler: Any, nvml: Any) -> Callable[[], None]:
    """The fast tick's raw pynvml calls for every GPU, minus those the sampler learnt are unsupported."""
    from daemon.sources.nvml import FAST_CALLS, THROTTLE_REASONS_FALLBACK

    caps = sampler.capabilities()
    steps = []
    for index, unavailable in caps.items():
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        for call in FAST_CALLS:
            if call.key == "clocks_event_reasons" and call.key in unavailable:
                call = THROTTLE_REASONS_FALLBACK
            fn, consts = call.bind(nvml)
            if call.key not in unavailable and fn is not None:
                steps.append((fn, (handle, *consts)))

    def run() -> None:
        for fn, args in steps:
            fn(*args)

    return run


def ticks(n: int, work: Path, data: dict[str, Any]) -> None:
    config = load_config(ROOT / "config.toml", work / "state")
    for d in model_paths(config.models):
        d.mkdir(parents=True, exist_ok=True)
    paths = [config.daemon.state_dir, *model_paths(config.models)]
    host = HostSampler(config.daemon.state_dir, model_paths(config.models))
    host_settings = HostSettings()

    def host_tick() -> None:
        evaluate_host({"host_sample": host.sample()}, host_settings)

    servers: list[subprocess.Popen] = []
    try:
        pid_files = []
        for i in range(SERVERS):
            pid_file = work / f"server{i}.pid"
            proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            pid_file.write_text(f"{proc.pid}\n")
            servers.append(proc)
            pid_files.append(pid_file)
        trackers = [(ProcessTracker(ProcessSource("pid_file", str(p))), ProcessSettings(pid_file=str(p)))
                    for p in pid_files]

        def process_tick() -> None:
            # ticks are seconds apart in the daemon: each pays for its own /proc scan (where the kernel
            # lacks /proc/PID/task/TID/children), so the shared parent index is expired first
            process_source._index_at = float("-inf")
            for tracker, settings in trackers:
                evaluate_process({"process_sample": tracker.sample()}, settings)

        sampler, nvml, gpu_source = gpu_sampler()
        n_gpus = max(1, len(sampler.sample_fast()))

        def whole_tick() -> None:
            host_tick()
            process_tick()
            sampler.sample_fast()

        out = {
            "host": stats_us(timed(host_tick, n)),
            "host_bare": stats_us(timed(bare_host(paths), n)),
            "processes": stats_us(timed(process_tick, n)),
            "processes_bare": stats_us(timed(bare_processes(pid_files, False), n)),
            "processes_naive_children": stats_us(timed(bare_processes(pid_files, True), n)),
            "gpu_fast_per_gpu": stats_us(timed(sampler.sample_fast, n), n_gpus),
            "gpu_fast_bare_per_gpu": stats_us(timed(bare_gpu(sampler, nvml), n), n_gpus),
            "whole_tick": stats_us(timed(whole_tick, n)),
        }
        sampler.close()
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
    data["ticks"] = {**out, "gpu_source": gpu_source, "host_processes": len(psutil.pids()),
                     "proc_children_file": process_source._HAS_PROC_CHILDREN, "gpus": n_gpus,
                     "watched_dirs": len(paths), "processes_sampled": SERVERS}
    print(f"CPU: {psutil.cpu_count()} logical cores; {len(psutil.pids())} processes on the host; "
          f"{len(paths)} watched dirs; {SERVERS} model processes; GPU: {n_gpus} x {gpu_source}")
    how = "/proc/PID/task/TID/children" if process_source._HAS_PROC_CHILDREN else "one /proc scan per tick"
    print(f"children found by: {how}")
    print(f"  {'tick (us)':<34} {'n':>5} {'median':>10} {'p99':>10}")
    print(row("host sample + check", out["host"], out["host_bare"]))
    print(row("  bare psutil calls", out["host_bare"]))
    print(row(f"{SERVERS} processes sample + check", out["processes"], out["processes_bare"]))
    print(row("  bare psutil reads, no children", out["processes_bare"]))
    print(row("  psutil with Process.children()", out["processes_naive_children"]))
    print(row("GPU fast tick, per GPU", out["gpu_fast_per_gpu"], out["gpu_fast_bare_per_gpu"],
              "" if gpu_source == "live NVML" else "  (fake)"))
    print(row("  bare pynvml calls, per GPU", out["gpu_fast_bare_per_gpu"]))
    print(row("whole tick (host + processes + GPU)", out["whole_tick"]))
    verdict = "met" if out["gpu_fast_per_gpu"]["median_us"] < 200 else "MISSED"
    print(f"  target: a fast GPU tick under 200 us per GPU: {verdict}"
          + ("" if gpu_source == "live NVML" else " (on the fake: Python cost only; see bench/RESULTS.md for H200)"))


# -- the idle daemon --------------------------------------------------------------------------------


def idle_daemon(seconds: float, work: Path, data: dict[str, Any]) -> None:
    from daemon.client import Client, DaemonUnreachable

    state = work / "idle-state"
    log_path = work / "daemon.log"
    env = {**{k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")},
           "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "daemon.cli", "daemon", "--config", str(ROOT / "config.toml"),
           "--state-dir", str(state)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=work)
    try:
        deadline = time.monotonic() + 30
        with Client(state / "modeltop.sock", timeout=2) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"daemon exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
                try:
                    client.health()
                    break
                except DaemonUnreachable:
                    if time.monotonic() > deadline:
                        raise RuntimeError("daemon not healthy within 30 s") from None
                    time.sleep(0.1)
        me = psutil.Process(proc.pid)
        startup = me.cpu_times()
        time.sleep(SETTLE_S)  # first runs of every job, jitter, DuckDB warm-up
        t0, c0 = time.monotonic(), me.cpu_times()
        threads0 = {t.id: t.user_time + t.system_time for t in me.threads()}
        time.sleep(seconds)
        t1, c1 = time.monotonic(), me.cpu_times()
        threads1 = {t.id: t.user_time + t.system_time for t in me.threads()}
        rss = me.memory_info().rss
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    used = (c1.user - c0.user) + (c1.system - c0.system)
    window = t1 - t0
    percent = 100.0 * used / window
    busiest = sorted(((threads1[t] - threads0.get(t, 0.0), t) for t in threads1), reverse=True)[:5]
    data["idle"] = {"window_s": round(window, 1), "cpu_s": round(used, 3), "percent_of_one_core": round(percent, 3),
                    "user_s": round(c1.user - c0.user, 3), "system_s": round(c1.system - c0.system, 3),
                    "startup_cpu_s": round(startup.user + startup.system, 2), "rss_mib": round(rss / 2**20, 1),
                    "threads": len(threads1), "busiest_threads": [[tid, round(s, 3)] for s, tid in busiest]}
    print(f"daemon with the demo config.toml, no traffic; startup cost {startup.user + startup.system:.2f} s CPU")
    print(f"  idle window {window:.1f} s (after {SETTLE_S:.0f} s to settle): {used:.3f} s CPU "
          f"(user {c1.user - c0.user:.3f}, system {c1.system - c0.system:.3f})")
    print(f"  = {percent:.2f}% of one core; RSS {rss / 2**20:.0f} MiB; {len(threads1)} threads")
    print("  busiest threads (tid: CPU s): " + ", ".join(f"{tid}: {s:.3f}" for s, tid in busiest))
    print(f"  target: idle daemon under 1% of one core: {'met' if percent < 1.0 else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=500, help="ticks per measurement (default 500)")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="idle window (default 60)")
    parser.add_argument("--only", choices=("ticks", "idle"), help="run one section")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    data: dict[str, Any] = {"python": sys.version.split()[0], "psutil": psutil.__version__}
    failed = False
    work = Path(tempfile.mkdtemp(prefix="mt-bench-", dir="/tmp"))  # short: the socket path must fit
    try:
        for title, fn in (("sampling ticks", lambda: ticks(args.ticks, work, data)),
                          ("idle daemon", lambda: idle_daemon(args.idle_seconds, work, data))):
            if args.only and not title.endswith(args.only) and not title.startswith(args.only):
                continue
            print(f"\n== {title} ==")
            try:
                fn()
            except Exception as exc:  # one failed section must not hide the other
                failed = True
                print(f"!! section failed: {type(exc).__name__}: {exc}")
                traceback.print_exc(limit=4, file=sys.stdout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    data["elapsed_s"] = round(time.monotonic() - started, 1)
    print(f"\ndone in {data['elapsed_s']} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1))
        print(f"figures written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
