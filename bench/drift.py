#!/usr/bin/env python3
"""What one run of the drift check costs, beside a bare scipy loop and a floor of sorting and counting.

    .venv/bin/python bench/drift.py [--sizes 100000 1000000] [--runs 5 3] [--json PATH]

Data: 20 numeric features (normal, log-normal, exponential, uniform, Poisson, rounded normal, bimodal) and
5 categorical ones (2 to 20 categories, object arrays of str with 1% None), reference and window of the
same size; the window drifts in 3 numeric features (0.2 sd to 0.5 sd) and 1 categorical one. Per size it
measures, each as the median of --runs runs:

- check: `checks.drift.evaluate` with default settings (2 threads): every per-feature statistic, BH, the
  verdict and the metrics, with the reference profile already built (as the daemon caches it);
- scipy: a bare loop of `scipy.stats.ks_2samp` per numeric feature and `scipy.stats.chi2_contingency` per
  categorical one, whose tables are counted with collections.Counter on both sides (the fastest plain way);
- floor: `np.sort` of every numeric column on both sides and `np.bincount` of every categorical column's
  integer codes on both sides (codes made beforehand: the floor does no string work at all);
- check with threads=1, and the profile build (once per model version, not per run).

Then the check's peak traced memory (tracemalloc, which numpy reports its buffers to) at the largest size,
and a sanity check that the check's KS statistics equal scipy's. Finishes in about 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from checks.drift import DriftSettings, DriftWindow, compare, evaluate  # noqa: E402
from checks.stats import ReferenceProfile  # noqa: E402

NUMERIC: list[Callable[[np.random.Generator, int], np.ndarray]] = [
    lambda r, n: r.normal(50, 10, n),
    lambda r, n: r.lognormal(0, 1, n),
    lambda r, n: r.exponential(2, n),
    lambda r, n: r.uniform(0, 1, n),
    lambda r, n: r.poisson(3, n).astype(float),
    lambda r, n: np.round(r.normal(0, 1, n), 1),
    lambda r, n: np.where(r.random(n) < 0.3, r.normal(-2, 0.5, n), r.normal(1, 1, n)),
]
CATEGORICAL = [
    ["yes", "no"],
    ["a", "b", "c"],
    ["north", "south", "east", "west", "central"],
    [f"plan{i}" for i in range(10)],
    [f"region{i}" for i in range(20)],
]
DRIFTED_NUMERIC = {"x0": 0.2, "x8": 0.5, "x11": 0.3}  # normal, log-normal, Poisson: shift in standard deviations


def make(seed: int, n: int, drift: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(columns, integer codes of the categorical columns) for one side."""
    r = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for i in range(20):
        x = NUMERIC[i % len(NUMERIC)](r, n)
        if drift and f"x{i}" in DRIFTED_NUMERIC:
            x = x + DRIFTED_NUMERIC[f"x{i}"] * x.std()
        columns[f"x{i}"] = x
    codes: dict[str, np.ndarray] = {}
    for j, labels in enumerate(CATEGORICAL):
        weights = 0.85 ** np.arange(len(labels))
        if drift and j == 2:
            weights[0] *= 1.6  # "north" gains about 10 points
        code = r.choice(len(labels), n, p=weights / weights.sum())
        values = np.array(labels, dtype=object)[code]
        missing = r.random(n) < 0.01
        values[missing] = None
        columns[f"c{j}"] = values
        codes[f"c{j}"] = np.where(missing, len(labels), code)
    return columns, codes


def median_time(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def scipy_loop(ref: dict[str, np.ndarray], win: dict[str, np.ndarray]) -> dict[str, float]:
    from scipy import stats

    out = {}
    for name in ref:
        if name.startswith("x"):
            out[name] = float(stats.ks_2samp(ref[name], win[name]).statistic)
        else:
            a, b = Counter(ref[name].tolist()), Counter(win[name].tolist())
            a.pop(None, None)
            b.pop(None, None)
            keys = sorted(set(a) | set(b))
            table = np.array([[a.get(k, 0) for k in keys], [b.get(k, 0) for k in keys]])
            out[name] = float(stats.chi2_contingency(table, correction=False).statistic)
    return out


def floor(ref: dict[str, np.ndarray], win: dict[str, np.ndarray], ref_codes: dict[str, np.ndarray],
          win_codes: dict[str, np.ndarray]) -> None:
    for name in ref:
        if name.startswith("x"):
            np.sort(ref[name])
            np.sort(win[name])
    for name in ref_codes:
        np.bincount(ref_codes[name])
        np.bincount(win_codes[name])


def bench_size(n: int, runs: int, memory: bool) -> dict[str, Any]:
    ref, ref_codes = make(1, n, drift=False)
    win, win_codes = make(2, n, drift=True)
    start = time.perf_counter()
    profile = ReferenceProfile.build(ref, max_rows=None)  # the bench compares full columns, like scipy
    build_s = time.perf_counter() - start
    window = DriftWindow(win, n)
    inputs = {"reference_profile": profile, "drift_window": window}
    settings = DriftSettings()
    result = evaluate(inputs, settings)  # warm-up (and scipy's import)
    scipy_stats = scipy_loop(ref, win)
    report = compare(profile, window, settings)
    for f in report.features:  # same numbers as scipy, or the comparison would be meaningless
        ours = f.stats.ks_statistic if f.numeric else f.stats.chi2_statistic
        assert abs(ours - scipy_stats[f.name]) <= 1e-9 * max(1.0, abs(scipy_stats[f.name])), f.name
    figures: dict[str, Any] = {
        "rows": n,
        "runs": runs,
        "check_s": median_time(lambda: evaluate(inputs, settings), runs),
        "check_1_thread_s": median_time(lambda: evaluate(inputs, DriftSettings(threads=1)), runs),
        "scipy_s": median_time(lambda: scipy_loop(ref, win), runs),
        "floor_s": median_time(lambda: floor(ref, win, ref_codes, win_codes), runs),
        "profile_build_s": build_s,
        "profile_mb": profile.nbytes / 2**20,
        "status": result.status.value,
        "reason": result.reason,
    }
    if memory:
        tracemalloc.start()
        evaluate(inputs, settings)
        figures["check_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, nargs="+", default=[5, 3], help="runs per size (median)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    runs = args.runs + [args.runs[-1]] * (len(args.sizes) - len(args.runs))
    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"{platform.machine()}; 20 numeric + 5 categorical features, rows per side:")
    rows = []
    for i, (n, k) in enumerate(zip(args.sizes, runs, strict=False)):
        figures = bench_size(n, k, memory=i == len(args.sizes) - 1)
        rows.append(figures)
        print(f"\n{n:>9} rows, median of {k}: check {figures['check_s']:.3f} s "
              f"(1 thread {figures['check_1_thread_s']:.3f} s), scipy loop {figures['scipy_s']:.3f} s, "
              f"floor {figures['floor_s']:.3f} s")
        print(f"          check is {figures['scipy_s'] / figures['check_s']:.2f}x faster than scipy, "
              f"{figures['check_s'] / figures['floor_s']:.2f}x the floor; profile build "
              f"{figures['profile_build_s']:.2f} s, {figures['profile_mb']:.0f} MB")
        if "check_peak_mb" in figures:
            print(f"          check peak traced memory {figures['check_peak_mb']:.0f} MB")
        print(f"          {figures['status']}: {figures['reason']}")
    print("\n| rows per side | check (2 threads) | check (1 thread) | scipy loop | floor | vs scipy | vs floor |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for f in rows:
        print(f"| {f['rows']:,} | {f['check_s']:.3f} s | {f['check_1_thread_s']:.3f} s | {f['scipy_s']:.3f} s | "
              f"{f['floor_s']:.3f} s | {f['scipy_s'] / f['check_s']:.2f}x faster | "
              f"{f['check_s'] / f['floor_s']:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
