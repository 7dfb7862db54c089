#!/usr/bin/env python3
"""What one run of the drift check costs, beside a bare scipy loop and a floor of sorting and counting, and
what reading its window out of DuckDB costs besides.

    .venv/bin/python bench/drift.py [--sizes 100000 1000000] [--runs 5 3] [--json PATH]

Data: 20 numeric features (normal, log-normal, exponential, uniform, Poisson, rounded normal, bimodal) and
5 categorical ones (2 to 20 categories, object arrays of str with 1% None), reference and window of the
same size; the window drifts in 3 numeric features (0.2 sd to 0.5 sd) and 1 categorical one. Per size it
measures, each as the median of --runs runs (taking turns run by run):

- check: `checks.drift.evaluate` with default settings (2 threads): every per-feature statistic, BH, the
  verdict and the metrics, with the reference profile already built (as the daemon caches it);
- scipy: a bare loop of `scipy.stats.ks_2samp` per numeric feature and `scipy.stats.chi2_contingency` per
  categorical one, whose tables are counted with collections.Counter on both sides (the fastest plain way);
- floor: `np.sort` of every numeric column on both sides and `np.bincount` of every categorical column's
  integer codes on both sides (codes made beforehand: the floor does no string work at all);
- check with threads=1, and the profile build (once per model version, not per run).

Reading the window out of DuckDB, measured apart (median of --runs, after one warm-up read on a connection
opened for the purpose; the first read after opening is reported too). The window and the reference are
written to a DuckDB file in a temporary directory as a predictions table (ts TIMESTAMP, 20 DOUBLE and 5
VARCHAR columns): the window's rows in the hour up to the evaluation time, the reference's rows in the hour
before (outside the window, so the WHERE has rows to skip), in ts order as ingest appends them. Then:

- read: the query of daemon/sources/drift.py, `SELECT <25 columns> ... WHERE ts >= ? AND ts <= ? ORDER BY
  ts DESC LIMIT max_rows` and `.fetchnumpy()`, and the check run on exactly what it returns (categorical
  columns come back as masked object arrays);
- counts: the numeric columns by the same query, and the categorical ones as {category: count} maps from
  one `GROUP BY GROUPING SETS` over the same window (which the check accepts: its categorical statistics
  need only counts), and the check run on that;
- counts, no top-N: as counts, but `count(*)` first and, since the window holds at most max_rows rows, no
  `ORDER BY ts DESC LIMIT` (the provider needs the top-N only when the window holds more);
- apart: the numeric and the categorical columns by the provider's query, the counts alone, and the check
  on the in-memory window again. These take turns run by run (the machine's load drifts).

The check's statistics on the two counts ways must equal those on the in-memory window (asserted); on the
window as fetchnumpy returns it they are compared and any difference is printed (and kept in the JSON as
read_mismatch): a masked object array's NULLs must count as missing, not as a category.

Then the check's peak traced memory (tracemalloc, which numpy reports its buffers to) at the largest size,
and the read's (the provider's query, and the counts way) with its result held,
and a sanity check that the check's KS statistics equal scipy's. Finishes in 2 to 3 minutes on 2 busy cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

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


def interleaved(fns: dict[str, Callable[[], Any]], runs: int) -> dict[str, float]:
    """Median seconds of each, taking turns run by run: on a machine shared with other work the load drifts
    over a minute, and turns put every contender under the same drift (one after the other would not)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


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


WINDOW_END = datetime(2026, 11, 26, 12, 0)  # the evaluation time, ctx.now() in the daemon
WINDOW = timedelta(seconds=float(DriftSettings().window))
MAX_ROWS = DriftSettings().max_rows


def side_table(columns: dict[str, np.ndarray], end: datetime, step_us: int) -> pa.Table:
    """One side as the predictions table holds it: ts (the last row at `end`), DOUBLE and VARCHAR columns."""
    n = len(next(iter(columns.values())))
    ts = np.datetime64(end, "us") - (np.arange(n)[::-1] * step_us).astype("timedelta64[us]")
    return pa.table({"ts": ts, **{name: pa.array(values, type=pa.float64() if name.startswith("x") else pa.string())
                                  for name, values in columns.items()}})


def store_window(path: Path, ref: dict[str, np.ndarray], win: dict[str, np.ndarray]) -> None:
    """A DuckDB file whose predictions table holds the window in (WINDOW_END - WINDOW, WINDOW_END] and the
    reference in the window before it, in ts order (ingest appends): the query must skip the older half."""
    n = len(next(iter(win.values())))
    step_us = int(WINDOW.total_seconds() * 1e6) // n
    with duckdb.connect(str(path)) as con:
        con.register("older", side_table(ref, WINDOW_END - WINDOW - timedelta(microseconds=step_us), step_us))
        con.register("recent", side_table(win, WINDOW_END, step_us))
        con.execute("CREATE TABLE predictions AS SELECT * FROM older")
        con.execute("INSERT INTO predictions SELECT * FROM recent")
        con.execute("CHECKPOINT")


def window_query(names: list[str], top_n: bool = True) -> str:
    """daemon/sources/drift.py's query (top_n), or the same window without ORDER BY ... LIMIT."""
    where = f"SELECT {', '.join(names)} FROM predictions WHERE ts >= $start AND ts <= $end"
    return where + " ORDER BY ts DESC LIMIT $max_rows" if top_n else where


PARAMS = {"start": WINDOW_END - WINDOW, "end": WINDOW_END, "max_rows": MAX_ROWS}


def read_window(con: duckdb.DuckDBPyConnection, names: list[str], top_n: bool = True) -> dict[str, Any]:
    params = PARAMS if top_n else {k: v for k, v in PARAMS.items() if k != "max_rows"}
    return con.cursor().execute(window_query(names, top_n), params).fetchnumpy()


def read_counts(con: duckdb.DuckDBPyConnection, names: list[str], top_n: bool = True) -> dict[str, dict[Any, int]]:
    """{feature: {category: count}} of the same window, one scan: GROUPING SETS, one set per column."""
    which = " ".join(f"WHEN grouping({c}) = 0 THEN '{c}'" for c in names)
    value = " ".join(f"WHEN grouping({c}) = 0 THEN {c}" for c in names)
    sets = ", ".join(f"({c})" for c in names)
    params = PARAMS if top_n else {k: v for k, v in PARAMS.items() if k != "max_rows"}
    rows = con.cursor().execute(
        f"""WITH w AS ({window_query(names, top_n)})
            SELECT CASE {which} END AS feature, CASE {value} END AS value, count(*) AS n
            FROM w GROUP BY GROUPING SETS ({sets})""", params).fetchall()
    counts: dict[str, dict[Any, int]] = {c: {} for c in names}
    for feature, category, count in rows:  # one row per (feature, category): tens, not the window's rows
        counts[feature][category] = count
    return counts


def read_lean(con: duckdb.DuckDBPyConnection, numeric: list[str], categorical: list[str]) -> DriftWindow:
    """Counts, and the top-N only when the window holds more than max_rows rows."""
    params = {k: v for k, v in PARAMS.items() if k != "max_rows"}
    rows = con.cursor().execute("SELECT count(*) FROM predictions WHERE ts >= $start AND ts <= $end",
                                params).fetchone()[0]
    top_n = rows > MAX_ROWS
    columns = {**read_window(con, numeric, top_n), **read_counts(con, categorical, top_n)}
    return DriftWindow(columns, min(rows, MAX_ROWS))


def read_with_counts(con: duckdb.DuckDBPyConnection, numeric: list[str], categorical: list[str]) -> DriftWindow:
    columns = {**read_window(con, numeric), **read_counts(con, categorical)}
    return DriftWindow(columns, len(columns[numeric[0]]))


def mismatches(profile: ReferenceProfile, a: DriftWindow, b: DriftWindow, settings: DriftSettings) -> list[str]:
    """Features whose statistics differ between two windows of the same rows (row order aside): none, unless
    a way of reading the window changes what the check sees (missing values taken for a category, say)."""
    out = []
    for fa, fb in zip(compare(profile, a, settings).features, compare(profile, b, settings).features, strict=True):
        x, y = ((fa.stats.ks_statistic, fb.stats.ks_statistic) if fa.numeric
                else (fa.stats.chi2_statistic, fb.stats.chi2_statistic))
        if not (abs(x - y) <= 1e-9 * max(1.0, abs(x)) and fa.stats.missing == fb.stats.missing):
            out.append(f"{fa.name} ({'ks' if fa.numeric else 'chi2'} {x:.6g} vs {y:.6g}, "
                       f"missing {fa.stats.missing} vs {fb.stats.missing})")
    return out


def peak_mb(fn: Callable[[], Any]) -> float:
    """Peak memory traced while fn runs and its result lives (numpy buffers and the Python str objects
    fetchnumpy makes for VARCHAR columns are traced; DuckDB's own buffers are not)."""
    tracemalloc.start()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    del result
    return peak


def bench_read(ref: dict[str, np.ndarray], win: dict[str, np.ndarray], profile: ReferenceProfile,
               runs: int, memory: bool) -> dict[str, Any]:
    """The window read from a DuckDB file as the daemon reads it, and the two cheaper ways (see the top)."""
    names = list(win)
    numeric = [c for c in names if c.startswith("x")]
    categorical = [c for c in names if c.startswith("c")]
    settings = DriftSettings()
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        path = Path(tmp) / "store.duckdb"
        start = time.perf_counter()
        store_window(path, ref, win)
        load_s = time.perf_counter() - start
        file_mb = path.stat().st_size / 2**20
        with duckdb.connect(str(path)) as con:
            start = time.perf_counter()
            data = read_window(con, names)
            first_s = time.perf_counter() - start
            n_rows = len(data[names[0]])
            assert n_rows == len(win[names[0]]), "the window query must return exactly the window"
            as_read = DriftWindow(data, n_rows)
            counted = read_with_counts(con, numeric, categorical)
            lean = read_lean(con, numeric, categorical)
            in_memory = DriftWindow(win, n_rows)
            for other in (counted, lean):
                assert not mismatches(profile, in_memory, other, settings), "counts must see the same data"
            read_mismatch = mismatches(profile, in_memory, as_read, settings)  # reported, not asserted: see main

            def check(window: DriftWindow) -> Callable[[], Any]:
                inputs = {"reference_profile": profile, "drift_window": window}
                return lambda: evaluate(inputs, settings)

            figures: dict[str, Any] = {"store_load_s": load_s, "store_file_mb": file_mb, "read_first_s": first_s,
                                       "read_mismatch": read_mismatch}
            figures.update(interleaved({
                "read_s": lambda: read_window(con, names),
                "check_on_read_s": check(as_read),
                "read_counts_s": lambda: read_with_counts(con, numeric, categorical),
                "check_on_counts_s": check(counted),
                "read_lean_s": lambda: read_lean(con, numeric, categorical),
                "read_numeric_s": lambda: read_window(con, numeric),
                "read_categorical_s": lambda: read_window(con, categorical),
                "read_categorical_counts_s": lambda: read_counts(con, categorical),
                "check_in_memory_s": check(in_memory),
            }, runs))
            if memory:
                figures["read_peak_mb"] = peak_mb(lambda: read_window(con, names))
                figures["read_counts_peak_mb"] = peak_mb(lambda: read_with_counts(con, numeric, categorical))
    figures["total_s"] = figures["read_s"] + figures["check_on_read_s"]
    figures["total_counts_s"] = figures["read_counts_s"] + figures["check_on_counts_s"]
    figures["total_lean_s"] = figures["read_lean_s"] + figures["check_on_counts_s"]
    return figures


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
        **interleaved({
            "check_s": lambda: evaluate(inputs, settings),
            "check_1_thread_s": lambda: evaluate(inputs, DriftSettings(threads=1)),
            "scipy_s": lambda: scipy_loop(ref, win),
            "floor_s": lambda: floor(ref, win, ref_codes, win_codes),
        }, runs),
        "profile_build_s": build_s,
        "profile_mb": profile.nbytes / 2**20,
        "status": result.status.value,
        "reason": result.reason,
    }
    figures.update(bench_read(ref, win, profile, runs, memory))
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
        print(f"          read from DuckDB (provider's query, fetchnumpy) {figures['read_s']:.3f} s "
              f"(first after opening {figures['read_first_s']:.3f} s; numeric columns alone "
              f"{figures['read_numeric_s']:.3f} s, categorical alone {figures['read_categorical_s']:.3f} s), "
              f"check on what it returns {figures['check_on_read_s']:.3f} s (on the in-memory window "
              f"{figures['check_in_memory_s']:.3f} s): {figures['total_s']:.3f} s")
        print(f"          categorical as GROUP BY counts (the counts alone "
              f"{figures['read_categorical_counts_s']:.3f} s): read {figures['read_counts_s']:.3f} s + check "
              f"{figures['check_on_counts_s']:.3f} s = {figures['total_counts_s']:.3f} s; and no top-N: read "
              f"{figures['read_lean_s']:.3f} s, {figures['total_lean_s']:.3f} s in all")
        if figures["read_mismatch"]:
            print("          WARNING: on the window as fetchnumpy returns it the check's statistics differ from "
                  "the in-memory window's: " + "; ".join(figures["read_mismatch"]))
        print(f"          store: {figures['store_file_mb']:.0f} MB file (window + as many older rows), "
              f"loaded in {figures['store_load_s']:.1f} s")
        if "check_peak_mb" in figures:
            print(f"          check peak traced memory {figures['check_peak_mb']:.0f} MB; the read's (its result "
                  f"held) {figures['read_peak_mb']:.0f} MB, with categorical counts "
                  f"{figures['read_counts_peak_mb']:.0f} MB")
        print(f"          {figures['status']}: {figures['reason']}")
    print("\n| rows per side | check (2 threads) | check (1 thread) | scipy loop | floor | vs scipy | vs floor |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for f in rows:
        print(f"| {f['rows']:,} | {f['check_s']:.3f} s | {f['check_1_thread_s']:.3f} s | {f['scipy_s']:.3f} s | "
              f"{f['floor_s']:.3f} s | {f['scipy_s'] / f['check_s']:.2f}x faster | "
              f"{f['check_s'] / f['floor_s']:.2f}x |")
    print("\n| rows per side | read (provider) | check on it | total | counts: read + check | total | "
          "counts, no top-N: read | total |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for f in rows:
        print(f"| {f['rows']:,} | {f['read_s']:.3f} s | {f['check_on_read_s']:.3f} s | {f['total_s']:.3f} s | "
              f"{f['read_counts_s']:.3f} s + {f['check_on_counts_s']:.3f} s | {f['total_counts_s']:.3f} s | "
              f"{f['read_lean_s']:.3f} s | {f['total_lean_s']:.3f} s |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
