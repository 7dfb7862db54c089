"""service: rate, error rate and latency judged from window sums; the scrape adds figures, not alarms."""

import pytest

from checks.base import Status
from checks.service import Selector, ServiceSettings, evaluate, parse_selector

URL = "http://127.0.0.1:8002/metrics"


def window(requests=600, errors=3, timed=None, p50=12.0, p95=40.0, p99=85.0, covered_s=300.0):
    return {"requests": requests, "errors": errors, "timed": requests if timed is None else timed,
            "p50": p50, "p95": p95, "p99": p99, "window_s": 300.0, "covered_s": covered_s}


def run(w=None, scrape=None, **settings):
    return evaluate({"service_window": w or window(), "service_scrape": scrape}, ServiceSettings(**settings))


def metrics(result):
    return {(m.name, tuple(sorted(m.dims.items()))): m.value for m in result.metrics}


def test_healthy_service_reports_rate_errors_and_latency():
    result = run()
    assert result.status is Status.OK
    assert result.reason == "2 req/s over 5m, errors 0.5%, p99 85 ms"
    assert metrics(result) == {
        ("requests", ()): 600.0, ("request_rate", ()): 2.0, ("error_rate", ()): 0.005,
        ("error_rate_lower95", ()): pytest.approx(0.0017018776582780136),
        ("latency_p50_ms", ()): 12.0, ("latency_p95_ms", ()): 40.0, ("latency_p99_ms", ()): 85.0,
    }


# Judged by the Wilson 95 % lower bound: of 600 requests, 11 errors (1.8 %) are the first that prove
# a rate above 1 %, and 41 (6.8 %) the first that prove one above 5 %.
@pytest.mark.parametrize(("errors", "status"), [(5, Status.OK), (10, Status.OK), (11, Status.WARN),
                                                (40, Status.WARN), (41, Status.CRIT), (600, Status.CRIT)])
def test_error_rate_against_the_default_one_and_five_percent(errors, status):
    assert run(window(errors=errors)).status is status


def test_a_few_errors_in_a_small_window_are_not_yet_evidence():
    result = run(window(requests=146, errors=3))  # 2 %, but plausibly a 1 % rate by chance
    assert result.status is Status.OK


def test_an_alarm_names_the_error_rate_its_counts_and_the_limit():
    assert run(window(errors=60)).reason == \
        "error rate 10.0% (60/600, at least 7.8% at 95% confidence; crit at 5.0%)"
    assert run(window(errors=12)).reason == "error rate 2.0% (12/600, at least 1.1% at 95% confidence; warn at 1.0%)"


def test_too_few_requests_are_insufficient_data_even_when_they_all_failed():
    result = run(window(requests=5, errors=5))
    assert result.status is Status.INSUFFICIENT_DATA
    assert result.reason == "only 5 requests in the last 5m (min_requests 20)"
    assert metrics(result)[("error_rate", ())] == 1.0  # still recorded for the graphs


def test_an_empty_window_is_insufficient_data():
    result = run(window(requests=0, errors=0, timed=0, p50=None, p95=None, p99=None, covered_s=0.0))
    assert result.status is Status.INSUFFICIENT_DATA
    assert result.reason == "no prediction in the last 5m"


def test_traffic_collapse_warns_when_asked_to_even_below_min_requests():
    collapsed = window(requests=3, errors=0)
    assert run(collapsed).status is Status.INSUFFICIENT_DATA  # rate_low_warn is off by default
    result = run(collapsed, rate_low_warn=0.5)
    assert result.status is Status.WARN
    assert result.reason == "traffic down to 0.01 req/s (warn below 0.5 req/s)"


def test_a_model_deployed_inside_the_window_is_rated_over_its_own_lifetime():
    result = run(window(requests=60, errors=0, covered_s=30.0), rate_low_warn=1.0)
    assert result.status is Status.OK
    assert metrics(result)[("request_rate", ())] == 2.0


def test_latency_is_judged_only_against_configured_budgets():
    slow = window(p99=2500.0)
    assert run(slow).status is Status.OK  # no universal latency budget
    result = run(slow, latency_p99_ms_warn=500.0, latency_p99_ms_crit=2000.0)
    assert result.status is Status.CRIT
    assert result.reason == "p99 latency 2500 ms (crit at 2000 ms)"


def test_the_worst_problem_comes_first():
    result = run(window(errors=12, p99=3000.0), latency_p99_ms_crit=2000.0)
    assert result.status is Status.CRIT
    assert result.reason == ("p99 latency 3000 ms (crit at 2000 ms), error rate 2.0% (12/600, at least 1.1% at 95% "
                             "confidence; warn at 1.0%)")


def test_rows_without_latency_give_no_percentiles():
    result = run(window(timed=0, p50=None, p95=None, p99=None))
    assert result.status is Status.OK
    assert result.reason == "2 req/s over 5m, errors 0.5%"
    assert not any(name.startswith("latency") for name, _ in metrics(result))


def test_scraped_values_become_prometheus_metrics():
    scrape = {"url": URL, "ok": True, "error": None, "values": {"queue_ms": 2.5, "request_rate": 1.9}, "missing": []}
    result = run(scrape=scrape, prometheus_url=URL)
    assert result.status is Status.OK
    prom = (("source", "prometheus"),)
    got = metrics(result)
    assert got[("queue_ms", prom)] == 2.5 and got[("request_rate", prom)] == 1.9
    assert got[("scrape_success", prom)] == 1.0 and got[("request_rate", ())] == 2.0


def test_a_failed_scrape_warns_but_keeps_the_log_figures():
    scrape = {"url": URL, "ok": False, "error": "[Errno 111] Connection refused", "values": {}, "missing": []}
    result = run(scrape=scrape, prometheus_url=URL)
    assert result.status is Status.WARN
    assert result.reason == f"2 req/s over 5m, errors 0.5%, p99 85 ms; scrape of {URL} failed: [Errno 111] " \
                            "Connection refused"
    got = metrics(result)
    assert got[("scrape_success", (("source", "prometheus"),))] == 0.0 and got[("error_rate", ())] == 0.005
    assert run(window(errors=60), scrape=scrape, prometheus_url=URL).status is Status.CRIT


def test_a_series_that_matched_nothing_is_named():
    scrape = {"url": URL, "ok": True, "error": None, "values": {}, "missing": ["queue_ms"]}
    result = run(scrape=scrape, prometheus_url=URL)
    assert result.status is Status.OK
    assert result.reason.endswith(f"; no sample for queue_ms at {URL}")


@pytest.mark.parametrize(("settings", "words"), [
    ({"window": 0.0}, "window must be longer than 0s"),
    ({"prometheus_url": "localhost:8002"}, "'localhost:8002' is not an http:// or https:// URL"),
    ({"prometheus_series": {"q": "x"}}, "prometheus_series is set but prometheus_url is not"),
    ({"prometheus_url": URL, "prometheus_series": {"Queue": "x"}}, "'Queue' is not a metric name"),
    ({"prometheus_url": URL, "prometheus_series": {"q": "x / 0"}}, "prometheus_series.q: 'x / 0': cannot divide"),
])
def test_bad_settings_are_an_error_that_says_which(settings, words):
    result = run(**settings)
    assert result.status is Status.ERROR
    assert result.reason.startswith("bad service settings: ") and words in result.reason


@pytest.mark.parametrize(("text", "selector"), [
    ("up", Selector("up")),
    ("rate:nv_inference_request_success", Selector("nv_inference_request_success", rate=True)),
    ('nv_inference_queue_duration_us{model="churn", version="1"} / 1000',
     Selector("nv_inference_queue_duration_us", (("model", "churn"), ("version", "1")), scale=0.001)),
    ('rate: x_total{path="/a\\"b"} * 60', Selector("x_total", (("path", '/a"b'),), rate=True, scale=60.0)),
    ("job:latency_seconds:mean5m*1e3", Selector("job:latency_seconds:mean5m", scale=1000.0)),
    ("x{}", Selector("x")),
])
def test_selectors_parse(text, selector):
    assert parse_selector(text) == selector


@pytest.mark.parametrize("text", ["", "rate:", "x{model=churn}", "x{model=\"a\" version=\"b\"}", "x + 1",
                                  "x * fast", "x / 0", "{model=\"a\"}"])
def test_bad_selectors_are_rejected(text):
    with pytest.raises(ValueError):
        parse_selector(text)
