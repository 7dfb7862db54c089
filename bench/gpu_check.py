#!/usr/bin/env python3
"""Check NvmlSampler on a real GPU: its values beside nvidia-smi's, and what its fast and slow ticks cost.

    python3 bench/gpu_check.py [--json PATH]            # on a machine with an NVIDIA GPU
    python3 bench/gpu_check.py --fake [--fake-sleep]    # anywhere: the recorded H200 (tests/fakes/nvml.py)

Prints plain text: per GPU and field, the sampler's value next to nvidia-smi's; then per GPU the cost of a
fast tick, a slow tick, a cached slow tick and a fast tick while a slow one runs in another thread (median
and p99 of 200/5 ticks, in us), each beside a bare loop of the same raw pynvml calls (the sampler's own
overhead is the ratio); then what the daemon pays per run of the gpu check (the provider's dict from a
fast tick and the cached slow one, GPU memory mapped to 5 models, and the pure check) beside the fast tick
alone, plus the run that finds the slow read due and, where duckdb is importable, the whole run with its
write to a store; then every call's cost. --json also writes the figures, plus every call's value and
error in the shape of tests/fixtures/nvml/h200-probe.json, so a run on a new GPU model is a capture.

With --fake, nvidia-smi's side is the recorded h200-nvidia-smi-query.csv (taken at another moment, so the
live values differ) and times measure Python only; "recorded" columns give what the calls cost on the H200.
Needs only the stdlib and pynvml (nvidia-ml-py); finishes in well under 60 s. Exit status: 0, or 1 when a
section failed (the others still print).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.util
import io
import json
import logging
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
FIXTURES = ROOT / "tests" / "fixtures" / "nvml"
MIB = 1024 * 1024
BUDGET_S = 50.0  # stop starting new measurements after this, to finish under a minute
SMI_FIELDS = (
    "name,uuid,utilization.gpu,utilization.memory,memory.used,memory.total,"
    "temperature.gpu,power.draw,clocks.sm,clocks_event_reasons.active"
)


def load_sampler_module() -> Any:
    """daemon.sources.nvml, by file path if importing the daemon package fails on this bare machine."""
    try:
        return importlib.import_module("daemon.sources.nvml")
    except ImportError as exc:
        print(f"(importing daemon.sources.nvml failed: {exc}; loading the file directly)")
        path = ROOT / "daemon" / "sources" / "nvml.py"
        spec = importlib.util.spec_from_file_location("modeltop_nvml", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
        spec.loader.exec_module(module)
        return module


# -- small helpers --------------------------------------------------------------------------------------


def stats_us(samples_ns: list[int], per: int = 1) -> dict[str, float]:
    """Median, p99 (nearest rank) and max of durations in ns, divided by `per` (GPUs), in us."""
    if not samples_ns:
        return {"n": 0, "median_us": float("nan"), "p99_us": float("nan"), "max_us": float("nan")}
    values = sorted(ns / 1000.0 / per for ns in samples_ns)
    p99 = values[min(len(values) - 1, max(0, int(round(0.99 * len(values))) - 1))]
    return {
        "n": len(values),
        "median_us": round(statistics.median(values), 3),
        "p99_us": round(p99, 3),
        "max_us": round(values[-1], 3),
    }


def timed(fn: Callable[[], Any], n: int, deadline: float) -> list[int]:
    out = []
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t0)
    return out


def jsonable(value: Any) -> Any:
    """NVML answers (ctypes structs, friendly objects, bytes) as plain JSON values."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    fields = getattr(value, "_fields_", None)
    if fields:
        return {f[0]: jsonable(getattr(value, f[0], None)) for f in fields if not f[0].startswith("_")}
    if hasattr(value, "__dict__"):
        return {k: jsonable(v) for k, v in vars(value).items() if not k.startswith("_")}
    return repr(value)


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.2f}"
    return str(value)


def parse_number(text: str) -> float | None:
    """'126.27 W' / '126.27' / '0x..01' / '[N/A]' -> a number or None."""
    text = text.strip()
    if not text or text.startswith("[") or text.upper() in {"N/A", "NOT SUPPORTED"}:
        return None
    token = text.split()[0]
    try:
        return float(int(token, 16)) if token.lower().startswith("0x") else float(token)
    except ValueError:
        return None


class Report:
    """Collects sections; a failing section prints its error and the run goes on."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {"section_errors": []}
        self.failed = False

    def section(self, title: str, fn: Callable[[], None]) -> None:
        print(f"\n== {title} ==")
        try:
            fn()
        except Exception as exc:  # one broken section must not hide the others
            self.failed = True
            self.data["section_errors"].append({"section": title, "error": f"{type(exc).__name__}: {exc}"})
            print(f"!! section failed: {type(exc).__name__}: {exc}")
            traceback.print_exc(limit=4, file=sys.stdout)


# -- nvidia-smi -----------------------------------------------------------------------------------------


def smi_rows(fake: bool) -> tuple[list[dict[str, str]], str]:
    """nvidia-smi's view per GPU (live, or the recorded CSV with --fake) and where it came from."""
    names = [f.strip() for f in SMI_FIELDS.split(",")]
    if fake:
        text = (FIXTURES / "h200-nvidia-smi-query.csv").read_text()
        rows = list(csv.reader(io.StringIO(text), skipinitialspace=True))[1:]
        return [dict(zip(names, r, strict=False)) for r in rows if r], "recorded h200-nvidia-smi-query.csv"
    if shutil.which("nvidia-smi") is None:
        raise RuntimeError("nvidia-smi is not on PATH")
    for fields in (SMI_FIELDS, SMI_FIELDS.replace("clocks_event_reasons", "clocks_throttle_reasons")):
        cmd = ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if proc.returncode == 0:
            rows = list(csv.reader(io.StringIO(proc.stdout), skipinitialspace=True))
            return [dict(zip(names, r, strict=False)) for r in rows if r], "live nvidia-smi"
        last = proc.stderr.strip() or proc.stdout.strip()
    raise RuntimeError(f"nvidia-smi --query-gpu failed: {last}")


def compare(sample: Any, smi: dict[str, str], decode: Callable[[int], tuple[str, ...]]) -> list[dict[str, Any]]:
    """One row per field: ours in nvidia-smi's unit, theirs, and whether they agree (within a tolerance)."""
    rows: list[dict[str, Any]] = []

    def add(field: str, ours: Any, theirs: Any, ok: bool | None, note: str = "") -> None:
        verdict = "n/a" if ok is None else ("same" if ok else "DIFF")
        if ok and note:
            verdict = "explained"
        rows.append({"field": field, "sampler": ours, "nvidia_smi": theirs, "verdict": verdict, "note": note})

    def near(a: float | None, b: float | None, tol: float) -> bool | None:
        return None if a is None or b is None else abs(a - b) <= tol

    add("name", sample.name, smi.get("name"), sample.name == smi.get("name"))
    add("uuid", sample.uuid, smi.get("uuid"), sample.uuid == smi.get("uuid"))
    ug, um = parse_number(smi.get("utilization.gpu", "")), parse_number(smi.get("utilization.memory", ""))
    add("utilization.gpu %", sample.utilization_gpu_pct, ug, near(sample.utilization_gpu_pct, ug, 10))
    add("utilization.memory %", sample.utilization_memory_pct, um, near(sample.utilization_memory_pct, um, 10))
    used = None if sample.memory_used_bytes is None else sample.memory_used_bytes / MIB
    total = None if sample.memory_total_bytes is None else sample.memory_total_bytes // MIB
    smi_used, smi_total = parse_number(smi.get("memory.used", "")), parse_number(smi.get("memory.total", ""))
    gap = None if used is None or smi_used is None else used - smi_used
    used_ok = near(used, smi_used, 2)
    note = ""
    if gap is not None and not used_ok and 0 < gap <= 2048:
        used_ok, note = True, f"+{gap:.0f} MiB: NVML v1 'used' counts driver-reserved memory, nvidia-smi not"
    add("memory.used MiB", None if used is None else round(used, 1), smi_used, used_ok, note)
    add("memory.total MiB", total, smi_total, near(total, smi_total, 1))
    t = parse_number(smi.get("temperature.gpu", ""))
    add("temperature.gpu C", sample.temperature_c, t, near(sample.temperature_c, t, 3))
    p = parse_number(smi.get("power.draw", ""))
    tol = None if p is None else max(15.0, 0.1 * p)
    add("power.draw W", sample.power_w, p, None if tol is None else near(sample.power_w, p, tol))
    c = parse_number(smi.get("clocks.sm", ""))
    add("clocks.sm MHz", sample.sm_clock_mhz, c, None if c is None else near(sample.sm_clock_mhz, c, 0.1 * c))
    mask_text = smi.get("clocks_event_reasons.active", "")
    mask = parse_number(mask_text)
    theirs = None if mask is None else f"{int(mask):#x} {','.join(decode(int(mask))) or '-'}"
    ours = (
        None
        if sample.throttle_reasons is None
        else f"{sample.throttle_reasons:#x} {','.join(sample.throttle_reason_names) or '-'}"
    )
    add("throttle reasons", ours, theirs, None if mask is None else ours == theirs)
    return rows


# -- the run --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fake", action="store_true", help="measure against the recorded H200 (no GPU needed)")
    parser.add_argument("--fake-sleep", action="store_true", help="with --fake, spend each call's recorded time")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--fast-ticks", type=int, default=200)
    parser.add_argument("--slow-ticks", type=int, default=5)
    args = parser.parse_args(argv)
    # the sampler's own log lines ("NVML ready", warnings) interleave with the report, marked as such
    logging.basicConfig(level=logging.INFO, format="log: %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    started = time.monotonic()
    deadline = started + BUDGET_S
    report = Report()
    data = report.data

    source = load_sampler_module()
    if args.fake:
        from tests.fakes.nvml import FakeNvml

        nvml: Any = FakeNvml(sleep=args.fake_sleep)
        sleeps = " (recorded sleeps on)" if args.fake_sleep else " (recorded sleeps off)"
        data["source"] = "fake: tests/fixtures/nvml/h200-probe.json" + sleeps
    else:
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError as exc:
            print(f"no GPU check possible: pynvml (nvidia-ml-py) is not importable ({exc}).")
            print("Run with --fake to measure against the recorded H200.")
            return write_json(args.json, {"gpu": False, "reason": str(exc)}, 0)
        data["source"] = "live NVML"
    sampler = source.NvmlSampler(nvml, slow_ttl_s=3600.0)

    t0 = time.perf_counter_ns()
    first = sampler.sample_fast()
    first_ns = time.perf_counter_ns() - t0
    if not first:
        reason = sampler.unavailable_reason or "no GPU"
        print(f"No NVIDIA GPU here ({reason.removeprefix('no GPU: ')}).")
        print("Run with --fake to measure the sampler against the recorded H200 (tests/fakes/nvml.py).")
        return write_json(args.json, {"gpu": False, "reason": reason, **data}, 0)
    n_gpus = len(first)
    handles = [nvml.nvmlDeviceGetHandleByIndex(s.index) for s in first]
    recorded = json.loads((FIXTURES / "h200-probe.json").read_text())["calls"]

    def environment() -> None:
        env: dict[str, Any] = {"source": data["source"], "python": platform.python_version(), "gpus": n_gpus}
        try:
            from importlib.metadata import version

            env["nvidia_ml_py"] = version("nvidia-ml-py")
        except Exception:
            env["nvidia_ml_py"] = "unknown"
        for key, fn in (
            ("driver", "nvmlSystemGetDriverVersion"),
            ("nvml_version", "nvmlSystemGetNVMLVersion"),
            ("cuda_driver_version", "nvmlSystemGetCudaDriverVersion"),
        ):
            try:
                env[key] = jsonable(getattr(nvml, fn)())
            except Exception as exc:
                env[key] = f"error: {type(exc).__name__}"
        env["first_sample_us"] = round(first_ns / 1000, 1)
        env["devices"] = [f"{s.index}: {s.name} {s.uuid}" for s in first]
        env["unavailable"] = {str(k): v for k, v in sampler.capabilities().items()}
        data["env"] = env
        for key, value in env.items():
            if key != "devices":
                print(f"{key:>20}: {value}")
        for line in env["devices"]:
            print(f"{'':>20}  {line}")
        print(f"{'':>20}  (first_sample includes nvmlInit, handles, and learning what is unsupported)")

    def side_by_side() -> None:
        rows_smi, origin = smi_rows(args.fake)
        samples = sampler.sample_fast()
        by_uuid = {r.get("uuid", "").strip(): r for r in rows_smi}
        table = source.throttle_reason_table(nvml)
        data["compare"] = {}
        print(f"sampler vs {origin} (fields in nvidia-smi's units)")
        if args.fake:
            print("(the recorded nvidia-smi row is from another moment: live values may differ; units must not)")
        for sample in samples:
            smi = by_uuid.get(sample.uuid)
            if smi is None:
                print(f"GPU {sample.index}: nvidia-smi has no row for {sample.uuid}")
                continue
            rows = compare(sample, smi, lambda m: source.decode_throttle_reasons(m, table))
            data["compare"][str(sample.index)] = rows
            print(f"GPU {sample.index} {sample.name}")
            print(f"  {'field':<22} {'sampler':>28} {'nvidia-smi':>28}  verdict")
            for r in rows:
                print(f"  {r['field']:<22} {fmt(r['sampler']):>28} {fmt(r['nvidia_smi']):>28}  {r['verdict']}"
                      + (f"  ({r['note']})" if r["note"] else ""))

    def plan(calls: tuple[Any, ...], index: int) -> list[tuple[str, Callable[..., Any], tuple[Any, ...]]]:
        """The raw calls the sampler makes for one GPU, minus those it learnt are unavailable."""
        unavailable = sampler.capabilities().get(first[index].index, {})
        out = []
        for call in calls:
            if call.key == "clocks_event_reasons" and call.key in unavailable:
                call = source.THROTTLE_REASONS_FALLBACK
            if call.key in unavailable:
                continue
            fn, consts = call.bind(nvml)
            if fn is not None:
                out.append((call.key, fn, (handles[index], *consts)))
        return out

    def bare(calls: tuple[Any, ...]) -> Callable[[], None]:
        steps = [(fn, a) for i in range(n_gpus) for _, fn, a in plan(calls, i)]

        def run() -> None:
            for fn, a in steps:
                fn(*a)

        return run

    def costs() -> None:
        out: dict[str, Any] = {}
        recorded_before = getattr(nvml, "recorded_us", None)
        fast = timed(sampler.sample_fast, args.fast_ticks, deadline)
        if recorded_before is not None and fast:
            out["fast_recorded_h200_us_per_gpu"] = round((nvml.recorded_us - recorded_before) / len(fast) / n_gpus, 2)
        out["fast"] = stats_us(fast, n_gpus)
        out["fast_bare"] = stats_us(timed(bare(source.FAST_CALLS), args.fast_ticks, deadline), n_gpus)
        recorded_before = getattr(nvml, "recorded_us", None)
        slow = timed(lambda: sampler.sample_slow(force=True), args.slow_ticks, deadline)
        if recorded_before is not None and slow:
            out["slow_recorded_h200_us_per_gpu"] = round((nvml.recorded_us - recorded_before) / len(slow) / n_gpus, 2)
        out["slow"] = stats_us(slow, n_gpus)
        out["slow_bare"] = stats_us(timed(bare(source.SLOW_CALLS), args.slow_ticks, deadline), n_gpus)
        out["slow_cached"] = stats_us(timed(sampler.sample_slow, args.fast_ticks, deadline), n_gpus)
        out["fast_during_slow"] = fast_during_slow()
        data["costs"] = out
        print(f"per GPU, in us ({n_gpus} GPU(s)); 'bare' = the same raw pynvml calls in a plain loop")
        print(f"  {'tick':<18} {'n':>5} {'median':>11} {'p99':>11} {'max':>11}   vs bare (median)")
        for name, against in (
            ("fast", "fast_bare"),
            ("fast_bare", ""),
            ("slow", "slow_bare"),
            ("slow_bare", ""),
            ("slow_cached", ""),
            ("fast_during_slow", "fast"),
        ):
            s = out[name]
            base = out.get(against)
            ratio = ""
            if base and base["n"] and s["n"] and base["median_us"] > 0:
                ratio = f"x{s['median_us'] / base['median_us']:.2f} vs {against}"
            figures = f"{s['median_us']:>11.1f} {s['p99_us']:>11.1f} {s['max_us']:>11.1f}"
            print(f"  {name:<18} {s['n']:>5} {figures}   {ratio}")
        if not out["fast_during_slow"]["n"]:
            print("  (fast_during_slow: the slow ticks ended before a fast one started; with the fake and no")
            print("   recorded sleeps there is nothing to wait for; try --fake-sleep)")
        for key in ("fast_recorded_h200_us_per_gpu", "slow_recorded_h200_us_per_gpu"):
            if key in out:
                print(f"  {key}: {out[key]} (sum of the H200's recorded medians for the calls made)")
        own = {"fast": sampler.last_fast_duration_s, "slow": sampler.last_slow_duration_s}
        print("  sampler's own last durations (all GPUs): "
              + ", ".join(f"{k} {'n/a' if v is None else f'{v * 1e6:.1f} us'}" for k, v in own.items()))

    def fast_during_slow() -> dict[str, Any]:
        """Fast ticks back to back while another thread runs slow ticks: does NVML make them wait?"""
        done = threading.Event()

        def slow_loop() -> None:
            try:
                for _ in range(3):
                    sampler.sample_slow(force=True)
            finally:
                done.set()

        thread = threading.Thread(target=slow_loop, daemon=True)
        samples: list[int] = []
        thread.start()
        while not done.is_set() and time.monotonic() < deadline and len(samples) < 200_000:
            t0 = time.perf_counter_ns()
            sampler.sample_fast()
            samples.append(time.perf_counter_ns() - t0)
        thread.join(timeout=30)
        return stats_us(samples, n_gpus)

    def per_call() -> None:
        calls_out: dict[str, Any] = {}
        errors_out: dict[str, str] = {}
        all_calls = (*source.FAST_CALLS, source.THROTTLE_REASONS_FALLBACK, *source.SLOW_CALLS)
        print("GPU 0, each call on its own, in us ('recorded' = the H200 capture's median)")
        print(f"  {'call':<26} {'path':<5} {'n':>4} {'median':>10} {'p99':>10} {'recorded':>10}  value / error")
        slow_keys = {c.key for c in source.SLOW_CALLS}
        for call in all_calls:
            if time.monotonic() > deadline:
                print("  (time budget spent; remaining calls skipped)")
                break
            fn, consts = call.bind(nvml)
            path = "slow" if call.key in slow_keys else "fast"
            if fn is None:
                errors_out[call.key] = "missing in this pynvml"
                print(f"  {call.key:<26} {path:<5} missing in this pynvml")
                continue
            reps = args.slow_ticks if path == "slow" else args.fast_ticks
            durations: list[int] = []
            value: Any = None
            error = ""
            for _ in range(reps):
                t0 = time.perf_counter_ns()
                try:
                    value = fn(handles[0], *consts)
                except Exception as exc:
                    durations.append(time.perf_counter_ns() - t0)
                    error = f"{type(exc).__name__}: {exc}"
                    break  # an unsupported call answers the same every time; once is its cost
                durations.append(time.perf_counter_ns() - t0)
            s = stats_us(durations)
            rec = _recorded_median(recorded, call.key)
            shown = error or json.dumps(jsonable(value))[:60]
            print(f"  {call.key:<26} {path:<5} {s['n']:>4} {s['median_us']:>10.2f} {s['p99_us']:>10.2f} "
                  f"{fmt(rec):>10}  {shown}")
            if error:
                errors_out[call.key] = error
            else:
                calls_out[call.key] = {"value": jsonable(value), "median_us": s["median_us"], "p99_us": s["p99_us"]}
        data["calls"] = calls_out
        data["errors"] = errors_out

    report.section("environment", environment)
    report.section("values: sampler beside nvidia-smi", side_by_side)
    report.section("cost per tick", costs)
    report.section("cost of the gpu check per run", lambda: check_costs(sampler, n_gpus, args, deadline, data))
    report.section("cost per call", per_call)
    data["elapsed_s"] = round(time.monotonic() - started, 2)
    print(f"\ndone in {data['elapsed_s']} s" + (" (a section failed, see above)" if report.failed else ""))
    sampler.close()
    return write_json(args.json, {"gpu": True, **data}, 1 if report.failed else 0)


MODELS = {f"model{i}": {4_000_000 + i} for i in range(5)}  # 5 models' pids: the mapping is paid, never matched


def check_costs(sampler: Any, n_gpus: int, args: Any, deadline: float, data: dict[str, Any]) -> None:
    """The gpu check as the daemon runs it each interval, beside the sampler's fast tick alone.

    provider = daemon/sources/gpu_input.py's GpuInput.sample (fast tick, slow tick from the TTL cache, the
    dict, GPU memory per model); check = provider + checks/gpu.py's evaluate; slow_due = a run that finds
    the slow read due (once per slow_interval); store = daemon/runner.py's run_check, which also writes
    the metrics, the run and the alert state to DuckDB (only where duckdb and psutil are importable).
    """
    from checks.gpu import GpuSettings, evaluate

    gpu_input = importlib.import_module("daemon.sources.gpu_input")
    settings = GpuSettings()
    ttl = float(settings.slow_interval)
    source = gpu_input.GpuInput(sampler)
    ttl_before = sampler.slow_ttl_s
    n = args.fast_ticks

    def provider() -> dict[str, Any]:
        return source.sample(MODELS, ttl)

    def check() -> Any:
        return evaluate({"gpu_sample": provider()}, settings)

    try:
        result = check()  # also fills the slow cache
        fixed = provider()
        out: dict[str, Any] = {
            "fast": stats_us(timed(sampler.sample_fast, n, deadline), n_gpus),
            "provider": stats_us(timed(provider, n, deadline), n_gpus),
            "evaluate": stats_us(timed(lambda: evaluate({"gpu_sample": fixed}, settings), n, deadline), n_gpus),
            "check": stats_us(timed(check, n, deadline), n_gpus),
            "slow_due": stats_us(timed(lambda: evaluate({"gpu_sample": source.sample(MODELS, 0.0)}, settings),
                                       args.slow_ticks, deadline), n_gpus),
        }
        out["store"] = store_costs(sampler, n_gpus, min(n, 50), deadline)
    finally:
        sampler.slow_ttl_s = ttl_before
    out["metric_rows_per_run"] = len(result.metrics) + 2  # + check_duration_seconds and check_success
    out["status"], out["reason"] = result.status.value, result.reason
    data["check_costs"] = out
    print(f"per GPU, in us ({n_gpus} GPU(s), 5 models); the daemon runs the check every `interval` (15 s)")
    print(f"  {'run':<10} {'n':>5} {'median':>11} {'p99':>11} {'max':>11}   vs fast (median)")
    for name in ("fast", "provider", "evaluate", "check", "slow_due", "store"):
        s = out[name]
        if s is None:
            continue
        ratio = f"x{s['median_us'] / out['fast']['median_us']:.2f}" if s["n"] and out["fast"]["median_us"] else ""
        print(f"  {name:<10} {s['n']:>5} {s['median_us']:>11.1f} {s['p99_us']:>11.1f} {s['max_us']:>11.1f}   {ratio}")
    if out["store"] is None:
        print("  (store: skipped, duckdb/psutil not importable here; run with --fake where the venv is)")
    print(f"  metric rows per run: {out['metric_rows_per_run']}; the check said {out['status']}: {out['reason']}")


def store_costs(sampler: Any, n_gpus: int, n: int, deadline: float) -> dict[str, float] | None:
    """run_check against a temporary store, with the daemon's own gpu provider reading this sampler's NVML."""
    try:
        import tempfile

        from checks.gpu import GpuSettings
        from daemon.config import CheckConfig
        from daemon.inputs import InputContext
        from daemon.runner import run_check
        from daemon.sources import gpu as gpu_source
        from daemon.store.db import Store
    except ImportError:
        return None
    gpu_source._INPUT = gpu_source.GpuInput(sampler)  # the provider's singleton, on the sampler measured here
    check = CheckConfig("gpu", 15.0, GpuSettings())
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        try:
            ctx = InputContext(store, None, None, None)  # type: ignore[arg-type]  (the gpu input needs neither)
            run_check(ctx, check)
            return stats_us(timed(lambda: run_check(ctx, check), n, deadline), n_gpus)
        finally:
            store.close()
            gpu_source._INPUT = None


def _recorded_median(recorded: dict[str, Any], key: str) -> float | None:
    """The H200 capture's median for our call key (its keys are named slightly differently)."""
    aliases = {
        "temperature_gpu": "temperature_gpu",
        "power_usage": "power_usage_mw",
        "power_limit": "power_limit_mw",
        "clock_sm": "clock_sm_mhz",
        "clock_mem": "clock_mem_mhz",
        "clocks_event_reasons": "throttle_reasons",
        "clocks_throttle_reasons": "throttle_reasons",
        "pcie_tx": "pcie_tx_kbps",
        "pcie_rx": "pcie_rx_kbps",
        "total_energy": "total_energy_mj",
        "max_clock_sm": "max_clock_sm_mhz",
        "ecc_volatile_corrected": "ecc_aggregate_corrected",
    }
    entry = recorded.get(aliases.get(key, key))
    return None if not entry or "median_us" not in entry else float(entry["median_us"])


def write_json(path: Path | None, payload: dict[str, Any], status: int) -> int:
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(payload, indent=1, default=repr))
            print(f"figures written to {path}")
        except OSError as exc:
            print(f"could not write {path}: {exc}")
            return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
