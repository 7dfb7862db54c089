"""host: CPU, memory, swap and each data disk against their thresholds; the worst one decides."""

from checks.base import Status
from checks.host import HostSettings, evaluate

STATE = {"path": "/var/lib/modeltop", "filesystem": 1, "device": "vda", "percent": 50.0, "used_bytes": 5e10,
         "total_bytes": 1e11, "read_bytes_per_second": 1000.0, "write_bytes_per_second": 2000.0, "error": None}
SPOOL = {**STATE, "path": "/var/lib/modeltop/spool/churn/predictions"}
REFERENCE = {**STATE, "path": "/data/reference", "filesystem": 2, "device": "nvme0n1p1", "percent": 10.0}
NET = {"sent_bytes_per_second": 5e5, "recv_bytes_per_second": 1e6, "errors_in_per_second": 0.0,
       "errors_out_per_second": 0.0, "drops_in_per_second": 2.0, "drops_out_per_second": 0.0}
SAMPLE = {"cpu_percent": 20.0, "cpu_percent_per_core": (10.0, 30.0), "load1": 0.5, "load5": 0.4, "load15": 0.3,
          "memory_percent": 40.0, "memory_used_bytes": 4e9, "memory_total_bytes": 1e10,
          "swap_percent": 0.0, "swap_used_bytes": 0, "swap_total_bytes": 0,
          "disks": (STATE, SPOOL, REFERENCE), "net": NET, "interval_s": 15.0}


def run(settings: HostSettings | None = None, **overrides):
    return evaluate({"host_sample": {**SAMPLE, **overrides}}, settings or HostSettings())


def metrics(result):
    return {(m.name, tuple(sorted(m.dims.items()))): m.value for m in result.metrics}


def test_healthy_host_reports_its_figures():
    result = run()
    assert result.status is Status.OK
    assert result.reason == "cpu 20%, mem 40%, disk 50%"
    got = metrics(result)
    assert got[("cpu_percent", ())] == 20.0
    assert got[("cpu_percent", (("core", "0"),))] == 10.0 and got[("cpu_percent", (("core", "1"),))] == 30.0
    assert (got[("load1", ())], got[("load5", ())], got[("load15", ())]) == (0.5, 0.4, 0.3)
    assert got[("disk_percent", (("path", "/data/reference"),))] == 10.0
    assert got[("disk_write_bytes_per_second", (("path", "/var/lib/modeltop"),))] == 2000.0
    assert got[("net_recv_bytes_per_second", ())] == 1e6 and got[("net_drops_in_per_second", ())] == 2.0
    assert got[("swap_total_bytes", ())] == 0


def test_the_worst_resource_decides_and_is_named():
    assert run(memory_percent=92.0).status is Status.WARN
    result = run(memory_percent=99.0, disks=(STATE, {**REFERENCE, "percent": 90.0}))
    assert result.status is Status.CRIT
    assert result.reason == "high memory 99%, disk /data/reference 90%"


def test_directories_on_one_filesystem_are_one_finding():
    full = ({**STATE, "percent": 96.0}, {**SPOOL, "percent": 96.0}, REFERENCE)
    result = run(disks=full)
    assert result.status is Status.CRIT
    assert result.reason == "high disk /var/lib/modeltop (+1 more) 96%"


def test_swap_is_judged_only_where_there_is_swap():
    with_swap = {"swap_total_bytes": 8e9, "swap_used_bytes": 5e9, "swap_percent": 62.5}
    result = run(**with_swap)
    assert result.status is Status.WARN and result.reason == "high swap 62%"
    relaxed = HostSettings(swap_warn=70.0, swap_crit=90.0)
    assert run(relaxed, **with_swap).reason == "cpu 20%, mem 40%, swap 62%, disk 50%"
    assert run(swap_percent=100.0, swap_total_bytes=0).status is Status.OK  # no swap configured at all


def test_first_sample_has_no_rates_rather_than_zeros():
    first = {**STATE, "read_bytes_per_second": None, "write_bytes_per_second": None}
    result = run(cpu_percent=None, cpu_percent_per_core=None, disks=(first,), net=None, interval_s=None)
    names = {m.name for m in result.metrics}
    assert result.status is Status.OK and result.reason == "mem 40%, disk 50%"
    assert "cpu_percent" not in names and not any("per_second" in n for n in names)
    assert {"disk_percent", "memory_percent", "load1"} <= names


def test_an_unreadable_directory_is_said_not_hidden():
    broken = {**REFERENCE, "percent": None, "used_bytes": None, "total_bytes": None, "device": None,
              "read_bytes_per_second": None, "write_bytes_per_second": None,
              "error": "PermissionError: Permission denied"}
    result = run(disks=(STATE, broken))
    assert result.reason == ("cpu 20%, mem 40%, disk 50%; "
                             "cannot read /data/reference: PermissionError: Permission denied")
