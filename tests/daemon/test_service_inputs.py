"""The service check's inputs: window sums computed by DuckDB on a real store, and a real loopback scrape."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from checks.base import Status
from daemon.config import ConfigError, load_config
from daemon.inputs import InputContext, gather
from daemon.runner import run_check
from daemon.sources.host import HostSampler
from daemon.sources.prometheus import CounterRates, scrape
from daemon.store.db import Store, ensure_model_tables, utcnow

CONFIG = """
[[models]]
name = "churn"
predictions = "spool/churn/predictions"

[models.features]
tenure_months = "double"

[models.checks.service]
window = "5m"
{extra}
"""


def context(tmp_path: Path, extra: str = "") -> InputContext:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(extra=extra))
    config = load_config(path, state_dir=tmp_path / "state")
    store = Store(config.daemon.database)
    model = config.model("churn")
    ensure_model_tables(store.cursor(), model.name, model.task, model.features)
    return InputContext(store, config.daemon, model, HostSampler(tmp_path))


def insert(ctx: InputContext, ages_s, latency_ms, errors) -> None:
    """Rows `ages_s` seconds old; NaN latency is stored as NULL, errors are strings or None."""
    now = utcnow()
    latency = np.asarray(latency_ms, dtype=float)
    batch = pa.table({
        "ts": pa.array([now - timedelta(seconds=float(a)) for a in ages_s], pa.timestamp("us")),
        "request_id": [f"r{i}-{time.monotonic_ns()}" for i in range(len(latency))],
        "latency_ms": pa.array(latency, mask=np.isnan(latency)),
        "error": pa.array(errors, pa.string()),
        "ingested_at": pa.array([now] * len(latency), pa.timestamp("us")),
    })
    cur = ctx.store.cursor()
    cur.register("batch", batch)
    cur.execute(f"INSERT INTO {ctx.model.predictions_table} BY NAME SELECT * FROM batch")
    cur.unregister("batch")


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[InputContext]:
    ctx = context(tmp_path)
    yield ctx
    ctx.store.close()


def test_window_sums_match_numpy_and_ignore_older_rows(ctx):
    rng = np.random.default_rng(7)
    latency = rng.lognormal(3.0, 0.8, 500)
    latency[rng.choice(500, 40, replace=False)] = np.nan  # rows that logged no latency
    errors = [None] * 500
    for i in rng.choice(500, 17, replace=False):
        errors[i] = "timeout"
    insert(ctx, rng.uniform(1, 290, 500), latency, errors)
    insert(ctx, rng.uniform(310, 3000, 100), np.full(100, 1e6), ["boom"] * 100)  # before the window

    w = gather(("service_window",), ctx)["service_window"]
    expected = np.quantile(latency[~np.isnan(latency)], [0.5, 0.95, 0.99])  # linear = quantile_cont
    assert (w["requests"], w["errors"], w["timed"]) == (500, 17, 460)
    assert [w["p50"], w["p95"], w["p99"]] == pytest.approx(expected, rel=1e-9)
    assert w["covered_s"] == 300.0  # the model logged before the window: the whole window counts

    result = run_check(ctx, ctx.model.checks[0])
    assert result.status is Status.WARN  # 3.4% errors: above the 1% warn, below the 5% crit
    assert result.reason == "error rate 3.4% (17/500, at least 2.1% at 95% confidence; warn at 1.0%)"
    recorded = dict(ctx.store.cursor().execute(
        "SELECT metric, value FROM metrics WHERE \"check\" = 'service' AND dims = '{}'").fetchall())
    assert recorded["request_rate"] == pytest.approx(500 / 300)
    assert recorded["error_rate"] == pytest.approx(17 / 500)
    assert recorded["latency_p99_ms"] == pytest.approx(expected[2], rel=1e-9)


def test_a_new_model_is_rated_over_the_time_since_its_first_row(ctx):
    insert(ctx, np.linspace(0.5, 60, 120), np.full(120, 5.0), [None] * 120)
    w = gather(("service_window",), ctx)["service_window"]
    assert w["requests"] == 120
    assert w["covered_s"] == pytest.approx(60, abs=1.0)  # not the 300 s window: no false traffic collapse


def test_an_empty_table_gives_an_empty_window(ctx):
    w = gather(("service_window",), ctx)["service_window"]
    assert (w["requests"], w["errors"], w["timed"], w["p99"], w["covered_s"]) == (0, 0, 0, None, 0.0)
    assert run_check(ctx, ctx.model.checks[0]).status is Status.INSUFFICIENT_DATA


# -- the scrape ------------------------------------------------------------------------------------

PAGE = """\
# HELP nv_inference_request_success Number of successful inference requests
# TYPE nv_inference_request_success counter
nv_inference_request_success{{model="churn",version="1"}} {churn}
nv_inference_request_success{{model="other",version="1"}} 7
# HELP nv_inference_queue_duration_us Cumulative queue time
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{{model="churn",version="1"}} 2500
# TYPE request_latency_seconds histogram
request_latency_seconds_bucket{{le="0.1"}} 30
request_latency_seconds_bucket{{le="+Inf"}} 40
request_latency_seconds_sum 3.5
request_latency_seconds_count 40
# TYPE batch_size summary
batch_size{{quantile="0.5"}} 4
batch_size{{quantile="0.99"}} NaN
batch_size_sum 160
batch_size_count 40
"""


class PageServer:
    """A model server's /metrics on 127.0.0.1, whose page the test changes between scrapes."""

    def __init__(self) -> None:
        self.page = PAGE.format(churn=100)
        self.status = 200
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                time.sleep(server.delay)
                body = server.page.encode()
                with contextlib.suppress(ConnectionError):  # the client gave up waiting (the timeout test)
                    self.send_response(server.status)
                    self.send_header("Content-Type", "text/plain; version=0.0.4")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[PageServer]:
    s = PageServer()
    yield s
    s.close()


SERIES = {
    "request_rate": 'rate:nv_inference_request_success{model="churn"}',
    "requests_all_models": "nv_inference_request_success",
    "queue_ms": 'nv_inference_queue_duration_us{model="churn"} / 1000',
    "latency_count": "request_latency_seconds_count",
    "fast_requests": 'request_latency_seconds_bucket{le="0.1"}',
    "batch_p50": 'batch_size{quantile="0.5"}',
    "batch_p99": 'batch_size{quantile="0.99"}',
}


def test_two_scrapes_give_a_counter_rate_and_scaled_sums(server):
    rates, clock = CounterRates(), iter([100.0, 110.0]).__next__
    first = scrape("churn", server.url, 2.0, SERIES, rates, clock)
    assert first["ok"] and first["error"] is None
    assert first["values"] == {"requests_all_models": 107.0, "queue_ms": 2.5, "latency_count": 40.0,
                               "fast_requests": 30.0, "batch_p50": 4.0}  # no rate yet: one scrape only
    assert first["missing"] == ["batch_p99"]  # NaN is no sample

    server.page = PAGE.format(churn=130)
    second = scrape("churn", server.url, 2.0, SERIES, rates, clock)
    assert second["values"]["request_rate"] == pytest.approx(3.0)  # 30 requests in 10 s
    assert second["values"]["requests_all_models"] == 137.0


def test_a_counter_that_went_down_was_reset(server):
    rates, clock = CounterRates(), iter([0.0, 5.0]).__next__
    series = {"request_rate": 'rate:nv_inference_request_success{model="churn"}'}
    scrape("churn", server.url, 2.0, series, rates, clock)
    server.page = PAGE.format(churn=20)  # the model server restarted
    assert scrape("churn", server.url, 2.0, series, rates, clock)["values"] == {"request_rate": 4.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_port_is_a_clear_failure():
    url = f"http://127.0.0.1:{free_port()}/metrics"
    result = scrape("churn", url, 2.0, SERIES)
    assert not result["ok"] and "refused" in result["error"].lower()


@pytest.mark.parametrize(("change", "words"), [
    ({"status": 404}, "HTTP 404 Not Found"),
    ({"page": "<html>login</html>\n"}, "not a Prometheus text page"),
    ({"delay": 1.0}, "no answer within 0.2s"),
])
def test_a_bad_answer_is_a_clear_failure(server, change, words):
    for attr, value in change.items():
        setattr(server, attr, value)
    result = scrape("churn", server.url, 0.2, SERIES)
    assert not result["ok"] and words in result["error"]


def test_the_check_scrapes_the_configured_url_and_reports_a_failure(tmp_path, server):
    ctx = context(tmp_path, f'prometheus_url = "{server.url}"\n'
                            'prometheus_series = { queue_ms = "nv_inference_queue_duration_us / 1000" }')
    insert(ctx, np.linspace(1, 100, 50), np.full(50, 8.0), [None] * 50)
    check = ctx.model.checks[0]
    result = run_check(ctx, check)
    assert result.status is Status.OK
    assert {(m.name, m.value, json.dumps(dict(m.dims))) for m in result.metrics} >= {
        ("queue_ms", 2.5, '{"source": "prometheus"}'), ("scrape_success", 1.0, '{"source": "prometheus"}')}

    server.close()
    result = run_check(ctx, check)
    assert result.status is Status.WARN
    assert f"scrape of {server.url} failed" in result.reason
    ctx.store.close()


def test_the_documented_stanza_loads_and_misordered_budgets_are_rejected(tmp_path):
    ctx = context(tmp_path, 'min_requests = 50\nerror_rate_warn = 0.02\nlatency_p99_ms_warn = 250.0\n'
                            'latency_p99_ms_crit = 1000.0\nrate_low_warn = 0.5\n'
                            'prometheus_url = "http://127.0.0.1:8002/metrics"\nprometheus_timeout = "1s"\n'
                            'prometheus_series = { request_rate = "rate:nv_inference_request_success" }')
    settings = ctx.model.checks[0].settings
    assert (settings.window, settings.min_requests, settings.error_rate_crit) == (300.0, 50, 0.05)
    assert settings.prometheus_series == {"request_rate": "rate:nv_inference_request_success"}
    ctx.store.close()
    path = tmp_path / "bad.toml"
    path.write_text(CONFIG.format(extra="latency_p99_ms_warn = 900.0\nlatency_p99_ms_crit = 500.0"))
    with pytest.raises(ConfigError, match="latency_p99_ms_warn: expected a value not above latency_p99_ms_crit"):
        load_config(path, state_dir=tmp_path / "state2")
