"""The gpu check's input against the recorded H200 (tests/fakes/nvml.py), and the daemon running it end to end.

End to end, the daemon imports a fake `pynvml` from a directory put first on its PYTHONPATH: the fake sits
at the true system edge (the NVML library), and everything of ours runs as in production.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from checks.base import Duration, Status
from checks.gpu import THROTTLE_REASONS, GpuSettings, evaluate
from daemon.config import CheckConfig, ConfigError, load_config
from daemon.sources.gpu import slow_interval
from daemon.sources.gpu_input import GpuInput
from daemon.sources.nvml import DEFAULT_THROTTLE_TABLE, NvmlSampler
from fakes.nvml import MIB, FakeNvml, MissingDriverNvml
from support import REPO, DaemonHandle, wait_for

LOADED = 40  # a point of the capture under load: pid 428 holds 6726 MiB, 55 C, sw_power_cap


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_check_knows_every_word_the_sampler_decodes():
    assert tuple(word for _, word in DEFAULT_THROTTLE_TABLE) == THROTTLE_REASONS


def test_each_tick_reads_the_fast_calls_and_the_slow_ones_once_per_slow_interval():
    fake, clock = FakeNvml(), Clock()
    source = GpuInput(NvmlSampler(fake, clock=clock))

    for _ in range(20):
        sample = source.sample(slow_ttl_s=60)
        clock.now += 2.9  # 20 ticks: 58 s

    [gpu] = sample["gpus"]
    assert (gpu["name"], gpu["temperature_c"], gpu["memory_total_bytes"]) == ("NVIDIA H200", 37, 150_754_820_096)
    assert gpu["throttle_reason_names"] == ("gpu_idle",)
    assert gpu["pcie_tx_bytes_per_s"] == 658 * 1024 and gpu["energy_total_j"] == pytest.approx(2403.177)
    assert fake.calls["nvmlDeviceGetMemoryInfo"] == 20
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 2  # tx and rx, once: the ~21 ms calls
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == 1
    clock.now += 3
    source.sample(slow_ttl_s=60)
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 4  # 61 s after the first slow read: read again
    source.sample(slow_ttl_s=5)
    source.sample(slow_ttl_s=5)
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 4  # a shorter interval starts from the last read
    clock.now += 5
    source.sample(slow_ttl_s=5)
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 6


def test_gpu_memory_is_split_by_model_and_judged_under_load():
    source = GpuInput(NvmlSampler(FakeNvml(device_count=2).at(LOADED)))
    sample = source.sample({"fraud": {428}, "churn": {17}})

    assert sample["model_memory_bytes"] == {"fraud": 2 * 6726 * MIB, "churn": 0}
    result = evaluate({"gpu_sample": sample}, GpuSettings())
    assert result.status is Status.OK  # 100% busy at its power cap, 55 C: a GPU doing its job
    assert result.reason == ("2 GPUs (2× NVIDIA H200): util 100%, mem up to 5%, up to 55 C, 1253 W; "
                             "GPU memory of fraud 13 GiB")
    throttled = {m.dims["gpu"] for m in result.metrics if m.name == "throttle_active" and m.value == 1}
    assert throttled == {"0", "1"}


def test_an_xid_warns_until_the_next_slow_read():
    fake, clock = FakeNvml(), Clock()
    source = GpuInput(NvmlSampler(fake, clock=clock))
    source.sample(slow_ttl_s=60)  # the first slow read registers for events
    fake.inject_xid(0, 79)
    clock.now += 60

    def judged():
        return evaluate({"gpu_sample": source.sample(slow_ttl_s=60)}, GpuSettings())

    first = judged()
    assert first.status is Status.WARN
    assert first.reason == "GPU0 NVIDIA H200: Xid 79 (GPU has fallen off the bus) (see dmesg)"
    clock.now += 30
    assert judged().status is Status.WARN  # the same slow read, still within its interval
    clock.now += 30
    assert judged().status is Status.OK


def test_no_driver_is_no_gpu_and_nvml_is_not_asked_every_tick():
    fake = MissingDriverNvml()
    source = GpuInput(NvmlSampler(fake, clock=Clock()))

    samples = [source.sample() for _ in range(50)]

    assert fake.calls["nvmlInit"] == 1
    assert samples[-1]["available"] is False and samples[-1]["gpus"] == []
    result = evaluate({"gpu_sample": samples[-1]}, GpuSettings())
    assert result.status is Status.INSUFFICIENT_DATA
    assert result.reason.startswith("no GPU: NVML did not start (LibraryNotFound")


def test_a_driver_that_goes_away_is_critical_not_no_gpu():
    fake = FakeNvml()
    source = GpuInput(NvmlSampler(fake, clock=Clock()))
    source.sample()
    fake.errors["nvmlDeviceGetMemoryInfo"] = 18  # NVML_ERROR_LIB_RM_VERSION_MISMATCH: driver upgraded

    result = evaluate({"gpu_sample": source.sample()}, GpuSettings())

    assert result.status is Status.CRIT
    assert result.reason.startswith("all 1 GPU(s) stopped answering: NVML stopped answering")
    assert "restart modeltop" in result.reason


def test_slow_interval_comes_from_the_check_being_run():
    check = CheckConfig("gpu", 15.0, GpuSettings(slow_interval=Duration(120)))
    assert slow_interval(SimpleNamespace(check=check)) == 120
    assert slow_interval(SimpleNamespace()) == 60  # a context without the check: the sampler's default


def test_the_config_stanza_is_validated(tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(textwrap.dedent("""
        [host.checks.gpu]
        interval = "5s"
        temperature_warn = 80
        power_warn = 0.97
        throttle_warn_reasons = ["hw_slowdown", "sw_power_cap"]
        slow_interval = "2m"
    """))
    [check] = load_config(config).host_checks
    assert check.interval == 5 and check.settings.slow_interval == 120
    assert check.settings.throttle_warn_reasons == ("hw_slowdown", "sw_power_cap")
    assert (check.settings.temperature_warn, check.settings.power_warn) == (80.0, 0.97)

    config.write_text('[host.checks.gpu]\nthrottle_crit_reasons = ["hw_thermal_slowdon"]\n')
    with pytest.raises(ConfigError, match="host.checks.gpu: expected throttle_crit_reasons to hold clock-event "
                                          "reasons .*found 'hw_thermal_slowdon'"):
        load_config(config)  # a typo would otherwise never fire


# -- the daemon, end to end ---------------------------------------------------------------------------

GPU_CONFIG = """
[daemon]
log_level = "debug"
shutdown_timeout = "5s"

[host.checks.gpu]
interval = "300ms"
"""
SHIM = """
# A stand-in `pynvml` for a test daemon: the real pynvml's constants and errors, the recorded H200's answers.
import importlib.machinery, importlib.util, os, sys
here = os.path.dirname(os.path.abspath(__file__))
search = [p for p in sys.path if os.path.abspath(p or ".") != here]
spec = importlib.machinery.PathFinder.find_spec("pynvml", search)
real = importlib.util.module_from_spec(spec)
sys.modules["pynvml"] = real  # what tests/fakes/nvml.py imports
spec.loader.exec_module(real)
spec = importlib.util.spec_from_file_location("modeltop_fake_nvml", {fake_path!r})
fakes = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = fakes
spec.loader.exec_module(fakes)
sys.modules["pynvml"] = fakes.{factory}  # what `import pynvml` gives the daemon
"""


def start_with_fake_nvml(handle: DaemonHandle, factory: str) -> DaemonHandle:
    shim = handle.root / "fake_pynvml"
    shim.mkdir()
    fake_path = str(REPO / "tests" / "fakes" / "nvml.py")
    (shim / "pynvml.py").write_text(SHIM.format(fake_path=fake_path, factory=factory))
    handle.write_config(GPU_CONFIG)
    return handle.start(PYTHONPATH=f"{shim}:{REPO}")


def gpu_status(handle: DaemonHandle) -> dict | None:
    done = handle.cli("status", "--json")
    host = next((m for m in json.loads(done.stdout)["models"] if m["name"] == "@host"), None)
    check = next((c for c in (host or {}).get("checks", ()) if c["check"] == "gpu"), None)
    return check if check and check["status"] != "pending" else None


def test_daemon_reports_the_h200(daemon_handle: DaemonHandle):
    handle = start_with_fake_nvml(daemon_handle, "FakeNvml()")

    check = wait_for(lambda: gpu_status(handle), message="first gpu run")

    assert check["status"] == "ok", handle.log_text()
    assert check["reason"] == "GPU0 NVIDIA H200: util 0%, mem 0% of 140 GiB, 37 C, 114 W of 700 W"
    with handle.client() as client:
        [[_, temp]] = client.metrics("@host", "gpu", "temperature_celsius", dims={"gpu": "0"}, limit=1)["points"]
        assert temp == 37
    assert "NVML ready: driver 580.159.04, 1 GPU(s): 0:NVIDIA H200" in handle.log_text()


def test_daemon_without_a_driver_says_no_gpu_once(daemon_handle: DaemonHandle):
    handle = start_with_fake_nvml(daemon_handle, "MissingDriverNvml()")

    with handle.client() as client:
        wait_for(lambda: len(client.check_runs("@host", "gpu")) >= 5, message="five gpu runs")
        assert client.alerts() == []
    check = gpu_status(handle)
    assert check["status"] == "insufficient_data"
    assert check["reason"].startswith("no GPU: NVML did not start (LibraryNotFound")
    assert handle.cli("status").returncode == 0
    assert sum("no GPU" in line for line in handle.log_text().splitlines()) == 1
