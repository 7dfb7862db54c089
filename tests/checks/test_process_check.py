"""process: up/down, restarts and resource thresholds of a model's serving process, judged from literal samples."""

import pytest

from checks.base import Status
from checks.process import MIB, ProcessSettings, evaluate

UP = {"up": True, "pid": 4242, "reason": None, "restarted_from": None, "restarts_total": 0,
      "source": "pid file /run/churn.pid", "cpu_percent": 35.0, "rss_bytes": 300 * MIB, "threads": 8,
      "open_fds": 40, "processes": 3, "uptime_seconds": 7200.0}
SETTINGS = ProcessSettings(pid_file="/run/churn.pid", cpu_warn=150.0, cpu_crit=350.0, rss_warn_mb=1024.0,
                           rss_crit_mb=2048.0, fds_warn=1000)


def run(settings: ProcessSettings = SETTINGS, **overrides):
    return evaluate({"process_sample": {**UP, **overrides}}, settings)


def test_a_healthy_process_reports_its_figures():
    result = run()
    assert result.status is Status.OK
    assert result.reason == "pid 4242 up 2.0h: cpu 35%, rss 300 MiB, 8 threads, 40 fds (3 processes)"
    values = {m.name: m.value for m in result.metrics}
    assert values == {"up": 1.0, "restarts_total": 0.0, "cpu_percent": 35.0, "rss_bytes": 300 * MIB,
                      "threads": 8.0, "open_fds": 40.0, "processes": 3.0, "uptime_seconds": 7200.0}


def test_a_vanished_process_is_crit_with_the_reason():
    down = {"up": False, "pid": None, "reason": "process from /run/churn.pid (pid 4242) is gone",
            "restarted_from": None, "restarts_total": 2}
    result = evaluate({"process_sample": down}, SETTINGS)
    assert result.status is Status.CRIT
    assert result.reason == "process from /run/churn.pid (pid 4242) is gone"
    assert {m.name: m.value for m in result.metrics} == {"up": 0.0, "restarts_total": 2.0}


def test_a_restart_warns_for_the_run_that_sees_it():
    result = run(pid=5000, restarted_from=4242, restarts_total=1, cpu_percent=None)
    assert result.status is Status.WARN
    assert result.reason == "restarted (pid 4242 → 5000)"
    assert {m.name: m.value for m in result.metrics}["restarts_total"] == 1.0


def test_thresholds_in_their_units():
    assert run(cpu_percent=200.0).status is Status.WARN  # % of one core: two busy cores
    result = run(rss_bytes=3000 * MIB)
    assert result.status is Status.CRIT and result.reason == "high rss 3000 MiB (pid 4242)"
    assert run(open_fds=1000).reason == "high fds 1000 (pid 4242)"
    both = run(restarted_from=4000, cpu_percent=400.0)
    assert both.status is Status.CRIT and both.reason == "restarted (pid 4000 → 4242); high cpu 400%"


def test_unset_thresholds_never_fire_and_missing_figures_are_left_out():
    plain = ProcessSettings(cmdline="gunicorn")
    result = run(plain, cpu_percent=None, open_fds=None, rss_bytes=50 * 1024 * MIB, processes=1, threads=1)
    assert result.status is Status.OK
    assert result.reason == "pid 4242 up 2.0h: rss 51200 MiB, 1 thread"
    assert {"cpu_percent", "open_fds"}.isdisjoint(m.name for m in result.metrics)


@pytest.mark.parametrize(("settings", "message"), [
    ({}, "exactly one of pid_file, systemd_unit or cmdline, found none"),
    ({"pid_file": "a.pid", "cmdline": "srv"},
     "exactly one of pid_file, systemd_unit or cmdline, found pid_file and cmdline"),
    ({"systemd_unit": ""}, "a non-empty systemd_unit, found an empty string"),
    ({"cmdline": "serve("}, "cmdline to be a regular expression, found 'serve('"),
    ({"pid_file": "a.pid", "rss_warn_mb": 900.0, "rss_crit_mb": 500.0},
     "rss_warn_mb not above rss_crit_mb (500), found 900"),
])
def test_settings_that_cannot_name_one_process_are_refused(settings, message):
    with pytest.raises(ValueError) as refused:
        ProcessSettings(**settings)
    assert str(refused.value).startswith(message)
