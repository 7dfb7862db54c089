"""host: CPU, memory and disk against their thresholds; the worst one decides."""

from checks.base import Status
from checks.host import HostSettings, evaluate

SAMPLE = {"cpu_percent": 20.0, "memory_percent": 40.0, "memory_used_bytes": 4e9, "memory_total_bytes": 1e10,
          "disk_percent": 50.0, "disk_used_bytes": 5e10, "disk_total_bytes": 1e11, "load1": 0.5}


def run(**overrides):
    return evaluate({"host_sample": {**SAMPLE, **overrides}}, HostSettings())


def test_healthy_host_reports_its_figures():
    result = run()
    assert result.status is Status.OK
    assert result.reason == "cpu 20%, mem 40%, disk 50%"
    assert {m.name for m in result.metrics} >= {"cpu_percent", "memory_percent", "disk_percent", "load1"}


def test_the_worst_resource_decides_and_is_named():
    assert run(disk_percent=90.0).status is Status.WARN
    result = run(disk_percent=90.0, memory_percent=99.0)
    assert result.status is Status.CRIT
    assert result.reason == "high memory 99%, disk 90%"
