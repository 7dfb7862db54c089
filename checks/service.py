"""service: request rate, error rate and latency of a model, from its prediction logs (and its own /metrics).

The four golden signals a model server owes its callers, read from what it already logs: every prediction
row carries `ts`, `latency_ms` and `error` (NULL when fine). The daemon (daemon/sources/service.py) sums
the last `window` inside DuckDB in one query; this module only judges the sums. Optionally the daemon also
scrapes the model server's own Prometheus page (Triton, TorchServe, vLLM...) for what logs cannot show,
such as queue time or GPU batch size; those values are reported, not judged.

Config stanza (defaults):

    [models.checks.service]
    interval = "30s"
    window = "5m"                # rows with ts in the last 5 minutes (event time, UTC)
    min_requests = 20            # fewer rows in the window -> insufficient_data (at 20, one error is 5%)
    error_rate_warn = 0.01       # share of rows whose `error` is set, judged by its 95 % lower bound
    error_rate_crit = 0.05
    # Unset (off) by default, examples shown:
    # latency_p99_ms_warn = 250.0   # p99 of latency_ms; no default because 5 ms is slow for a tabular
    # latency_p99_ms_crit = 1000.0  #   model and fast for an LLM: only the operator knows the budget
    # rate_low_warn = 0.5           # requests/s below this -> warn (traffic collapse; silence is freshness's)
    # prometheus_url = "http://127.0.0.1:8002/metrics"   # the model server's own page, on this host
    prometheus_timeout = "2s"    # the whole fetch; one slow page must not hold up the check
    prometheus_series = {}       # our metric name = selector, e.g.
    # prometheus_series = { request_rate = "rate:nv_inference_request_success",
    #                       queue_ms = "nv_inference_queue_duration_us / 1000" }

Rates: requests / window, except for a model whose first logged row lies inside the window (just
deployed), where the rate is over the time since that row (at least 1 s), so a new model is not reported
as a traffic collapse. Rows reach the store every `daemon.ingest_interval`, so the newest seconds of the
window are always slightly under-counted (2 s of 5 min: under 1%).

Error rate and latency are judged only with at least `min_requests` rows (latency: rows with latency_ms);
`rate_low_warn` is judged even below it, since a collapse is exactly a window with too few rows.

Series selectors (`prometheus_series`), a deliberately small language, evaluated on each scrape:

    name                      sum of every sample called `name` (a counter written without _total matches
                              its _total samples; histogram parts are name_sum, name_count, name_bucket)
    name{label="v", l2="w"}   only samples carrying these labels (exact match; other labels are summed over)
    rate:name{...}            per-second rate of that sum between two scrapes; nothing on the first scrape,
                              a drop counts as a counter reset
    ... * k   or   ... / k    scale the result (k a number), e.g. "nv_inference_queue_duration_us / 1000"

The scrape is meant for the model server on this host (loopback), like everything modeltop watches; any
http(s) URL is accepted because a containerised server often publishes on a bridge address. The page is
fetched on every run of the check, bounded in time and size, with no proxy and no redirects. A failed
scrape makes the check at least warn (the operator asked for those numbers and lost them) with
`scrape of URL failed: ...` in the reason and scrape_success = 0, but the log-based figures are still
judged and recorded. A selector matching no sample is named in the reason (a typo, or a server that
publishes the series only after first use).

Metrics (dims {} unless said):
    requests        rows in the window                          count
    request_rate    requests per second                         req/s, lower is worse (rate_low_warn)
    error_rate      share of rows with an error                 ratio 0..1, higher is worse
    error_rate_lower95  95 % Wilson lower bound of error_rate: what the thresholds judge  ratio 0..1
    latency_p50_ms / latency_p95_ms / latency_p99_ms            ms, higher is worse (p99 judged)
    scrape_success  1 if the page was fetched and parsed, else 0    dims {"source": "prometheus"}
    <name>          each prometheus_series value                dims {"source": "prometheus"}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from checks.base import CheckResult, CheckSpec, Duration, Metric, Status, register, threshold_status, worst

PROMETHEUS_DIMS: Mapping[str, str] = {"source": "prometheus"}


@dataclass(frozen=True)
class ServiceSettings:
    window: Duration = Duration(300)
    min_requests: int = 20
    error_rate_warn: float | None = 0.01
    error_rate_crit: float | None = 0.05
    latency_p99_ms_warn: float | None = None
    latency_p99_ms_crit: float | None = None
    rate_low_warn: float | None = None
    prometheus_url: str | None = None
    prometheus_timeout: Duration = Duration(2)
    prometheus_series: dict[str, str] = field(default_factory=dict)


# -- series selectors (pure, so config problems can be found without the network) ------------------

@dataclass(frozen=True)
class Selector:
    """One parsed `prometheus_series` value."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()
    rate: bool = False
    scale: float = 1.0


_SERIES_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_SELECTOR = re.compile(
    r"""\s*(?P<rate>rate:)?\s*
        (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*
        (?:\{(?P<labels>[^}]*)\}\s*)?
        (?:(?P<op>[*/])\s*(?P<k>[0-9.eE+-]+)\s*)?""",
    re.VERBOSE,
)
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_UNESCAPE = re.compile(r"\\(.)")


def parse_selector(text: str) -> Selector:
    """`[rate:]name[{label="v",...}][ * k | / k ]`; ValueError saying what is wrong."""
    match = _SELECTOR.fullmatch(text)
    if match is None or match["name"] == "rate:":
        raise ValueError(f'{text!r} is not a selector of the form [rate:]name{{label="value"}} [* or / number]')
    labels: list[tuple[str, str]] = []
    body = (match["labels"] or "").strip()
    pos = 0
    while pos < len(body):
        label = _LABEL.match(body, pos)
        if label is None:
            raise ValueError(f'{text!r}: labels must be written label="value", separated by commas')
        labels.append((label[1], _UNESCAPE.sub(r"\1", label[2])))
        pos = label.end()
    scale = 1.0
    if match["op"]:
        try:
            k = float(match["k"])
        except ValueError:
            raise ValueError(f"{text!r}: {match['k']!r} is not a number") from None
        if match["op"] == "/":
            if k == 0:
                raise ValueError(f"{text!r}: cannot divide by 0")
            k = 1.0 / k
        scale = k
    return Selector(match["name"], tuple(labels), bool(match["rate"]), scale)


def settings_problem(settings: ServiceSettings) -> str | None:
    """What is wrong with these settings beyond their types (which config validation checks), or None."""
    if settings.window <= 0:
        return "window must be longer than 0s"
    url = settings.prometheus_url
    if url is not None and not re.match(r"https?://[^/\s]+", url):
        return f"prometheus_url {url!r} is not an http:// or https:// URL"
    if settings.prometheus_timeout <= 0:
        return "prometheus_timeout must be longer than 0s"
    if settings.prometheus_series and url is None:
        return "prometheus_series is set but prometheus_url is not"
    for name, text in settings.prometheus_series.items():
        if not _SERIES_NAME.fullmatch(name):
            return f"prometheus_series: {name!r} is not a metric name (lower-case letters, digits, _)"
        try:
            parse_selector(text)
        except ValueError as exc:
            return f"prometheus_series.{name}: {exc}"
    return None


# -- judging -----------------------------------------------------------------------------------------

def evaluate(inputs: Mapping[str, Any], settings: ServiceSettings) -> CheckResult:
    """inputs:
    `service_window`: requests, errors, timed (rows with latency_ms), p50/p95/p99 (ms, None when timed is
        0), window_s, covered_s (seconds of the window the model has logged for; 0 when nothing ever was);
    `service_scrape`: None when no prometheus_url, else url, ok, error (str or None), values
        ({our name: value}) and missing (names whose selector matched nothing).
    """
    problem = settings_problem(settings)
    if problem is not None:
        return CheckResult(Status.ERROR, f"bad service settings: {problem}")
    w = inputs["service_window"]
    status, reason, metrics = _judge_window(w, settings)
    scrape = inputs.get("service_scrape")
    if scrape is not None:
        scrape_status, note, scraped = _judge_scrape(scrape)
        status = worst([status, scrape_status])
        reason = f"{reason}; {note}" if note else reason
        metrics += scraped
    return CheckResult(status, reason, metrics)


def _judge_window(w: Mapping[str, Any], s: ServiceSettings) -> tuple[Status, str, tuple[Metric, ...]]:
    requests, errors, timed = int(w["requests"]), int(w["errors"]), int(w["timed"])
    covered = float(w["covered_s"])
    window = _duration(float(w["window_s"]))
    if covered <= 0:
        return Status.INSUFFICIENT_DATA, f"no prediction in the last {window}", (Metric("requests", 0.0),)
    rate = requests / max(covered, 1.0)
    metrics = [Metric("requests", float(requests)), Metric("request_rate", rate)]
    judged: list[tuple[Status, str]] = []
    if s.rate_low_warn is not None:
        st = threshold_status(rate, s.rate_low_warn, None, higher_is_worse=False)
        judged.append((st, f"traffic down to {_rate(rate)} (warn below {_rate(s.rate_low_warn)})"))
    summary = [f"{_rate(rate)} over {window}"]
    if requests:
        error_rate = errors / requests
        metrics.append(Metric("error_rate", error_rate))
        summary.append(f"errors {_pct(error_rate)}")
        if requests >= s.min_requests:
            # Judge the rate we are 95 % sure of, not the point estimate: 3 errors in 146 requests (2 %)
            # is not yet evidence of a rate above 1 %, while 60 in 3000 is.
            lower = wilson_lower_bound(errors, requests)
            metrics.append(Metric("error_rate_lower95", lower))
            st = threshold_status(lower, s.error_rate_warn, s.error_rate_crit)
            limit = s.error_rate_crit if st is Status.CRIT else s.error_rate_warn
            judged.append((st, f"error rate {_pct(error_rate)} ({errors}/{requests}, at least {_pct(lower)} "
                               f"at 95% confidence; {st.value} at {_pct(limit or 0.0)})"))
    if timed and w["p99"] is not None:
        for q in ("p50", "p95", "p99"):
            metrics.append(Metric(f"latency_{q}_ms", float(w[q])))
        p99 = float(w["p99"])
        summary.append(f"p99 {p99:.0f} ms")
        if timed >= s.min_requests:
            st = threshold_status(p99, s.latency_p99_ms_warn, s.latency_p99_ms_crit)
            limit = s.latency_p99_ms_crit if st is Status.CRIT else s.latency_p99_ms_warn
            judged.append((st, f"p99 latency {p99:.0f} ms ({st.value} at {limit or 0.0:g} ms)"))
    bad = [(st, text) for st, text in judged if st is not Status.OK]
    if bad:
        bad.sort(key=lambda item: -item[0].severity)
        return worst([st for st, _ in bad]), ", ".join(text for _, text in bad), tuple(metrics)
    if requests < s.min_requests:
        return (Status.INSUFFICIENT_DATA,
                f"only {requests} requests in the last {window} (min_requests {s.min_requests})", tuple(metrics))
    return Status.OK, ", ".join(summary), tuple(metrics)


def _judge_scrape(scrape: Mapping[str, Any]) -> tuple[Status, str, tuple[Metric, ...]]:
    if not scrape["ok"]:
        return (Status.WARN, f"scrape of {scrape['url']} failed: {scrape['error']}",
                (Metric("scrape_success", 0.0, PROMETHEUS_DIMS),))
    metrics = [Metric("scrape_success", 1.0, PROMETHEUS_DIMS)]
    metrics += [Metric(name, float(v), PROMETHEUS_DIMS) for name, v in scrape["values"].items()
                if v is not None and math.isfinite(v)]
    missing = list(scrape.get("missing") or ())
    note = f"no sample for {', '.join(missing)} at {scrape['url']}" if missing else ""
    return Status.OK, note, tuple(metrics)


def _rate(per_s: float) -> str:
    return f"{per_s:.3g} req/s" if per_s < 10 else f"{per_s:.0f} req/s"


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.1f}%"


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


SPEC = register(
    CheckSpec(
        name="service",
        scope="model",
        settings=ServiceSettings,
        inputs=("service_window", "service_scrape"),
        evaluate=evaluate,
        default_interval=30.0,
        description="request rate, error rate and latency percentiles from the prediction logs",
    )
)


def wilson_lower_bound(successes: int, trials: int, z: float = 1.959963984540054) -> float:
    """Lower end of the Wilson score interval (95 % by default) for a proportion."""
    if trials <= 0:
        return 0.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, (centre - spread) / (1 + z * z / trials))
