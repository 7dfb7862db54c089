"""NvmlSampler against a real H200 capture (tests/fixtures/nvml/): values, units, costs, and no-GPU hosts."""

from __future__ import annotations

import csv
import logging
import subprocess
import sys
from pathlib import Path

import pynvml
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` without `python -m` does not put the repo root on sys.path
    sys.path.insert(0, str(ROOT))

from daemon.sources.nvml import (  # noqa: E402
    NvmlSampler,
    decode_throttle_reasons,
    map_processes_to_models,
)
from tests.fakes.nvml import MIB, FakeNvml, MissingDriverNvml  # noqa: E402

SMI_CSV = ROOT / "tests" / "fixtures" / "nvml" / "h200-nvidia-smi-query.csv"
SLOW_FUNCTIONS = (
    "nvmlDeviceGetPcieThroughput",
    "nvmlDeviceGetTotalEnergyConsumption",
    "nvmlDeviceGetMaxClockInfo",
    "nvmlDeviceGetBAR1MemoryInfo",
    "nvmlDeviceGetEccMode",
    "nvmlEventSetWait",
)
# A point of the capture's timeline under load: pid 428 holds 6726 MiB, throttle reason sw_power_cap.
LOADED = 40


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def gpu_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="modeltop.gpu")
    return caplog


def gpu_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "modeltop.gpu"]


def test_fast_sample_has_the_captured_values_in_bytes_watts_and_celsius() -> None:
    [gpu] = NvmlSampler(FakeNvml()).sample_fast()

    assert (gpu.index, gpu.name, gpu.uuid) == (0, "NVIDIA H200", "GPU-00000000-1111-2222-3333-444444444444")
    assert gpu.memory_total_bytes == 150_754_820_096
    assert gpu.memory_used_bytes == 644_939_776
    assert gpu.temperature_c == 37
    assert gpu.power_w == pytest.approx(114.172)  # NVML says 114172 mW
    assert gpu.power_limit_w == pytest.approx(700.0)
    assert (gpu.sm_clock_mhz, gpu.mem_clock_mhz) == (900, 3201)
    assert (gpu.utilization_gpu_pct, gpu.utilization_memory_pct) == (0, 0)
    assert (gpu.ecc_volatile_uncorrected, gpu.ecc_volatile_corrected) == (0, 0)
    assert (gpu.remapped_rows_correctable, gpu.remapped_rows_uncorrectable) == (0, 0)
    assert (gpu.remapped_rows_pending, gpu.remapped_rows_failure) == (False, False)
    assert gpu.process_memory_bytes == {}
    # the same GPU as nvidia-smi saw it: name, uuid and total memory in MiB agree
    with SMI_CSV.open() as f:
        smi = next(csv.DictReader(f, skipinitialspace=True))
    assert gpu.name == smi["name"] and gpu.uuid == smi["uuid"]
    assert f"{gpu.memory_total_bytes // MIB} MiB" == smi["memory.total [MiB]"]


def test_unsupported_call_reads_none_and_is_asked_only_once(gpu_log: pytest.LogCaptureFixture) -> None:
    fake = FakeNvml()  # the H200 capture: fan speed NotSupported (no fan on a passively cooled board)
    sampler = NvmlSampler(fake)

    samples = [sampler.sample_fast() for _ in range(5)]

    assert all(s[0].fan_speed_pct is None for s in samples)
    assert fake.calls["nvmlDeviceGetFanSpeed"] == 1
    assert fake.calls["nvmlDeviceGetMemoryInfo"] == 5
    assert sampler.capabilities() == {0: {"fan_speed": "NotSupported"}}
    debug = [r for r in gpu_records(gpu_log) if r.levelno == logging.DEBUG]
    assert len(debug) == 1 and "fan_speed" in debug[0].getMessage()


def test_a_transient_error_reads_none_warns_once_and_is_retried(gpu_log: pytest.LogCaptureFixture) -> None:
    fake = FakeNvml(errors={"nvmlDeviceGetTemperature": pynvml.NVML_ERROR_GPU_IS_LOST})
    sampler = NvmlSampler(fake)

    samples = [sampler.sample_fast() for _ in range(3)]

    assert [s[0].temperature_c for s in samples] == [None, None, None]
    assert fake.calls["nvmlDeviceGetTemperature"] == 3  # not a capability: asked again next tick
    assert "temperature_gpu" not in sampler.capabilities()[0]
    warnings = [r for r in gpu_records(gpu_log) if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "GpuIsLost" in warnings[0].getMessage()
    del fake.errors["nvmlDeviceGetTemperature"]
    assert sampler.sample_fast()[0].temperature_c == 37


def test_throttle_bitmask_is_decoded_to_words() -> None:
    fake = FakeNvml()
    sampler = NvmlSampler(fake)

    idle = sampler.sample_fast()[0]
    fake.at(LOADED)
    loaded = sampler.sample_fast()[0]

    assert (idle.throttle_reasons, idle.throttle_reason_names) == (1, ("gpu_idle",))
    assert (loaded.throttle_reasons, loaded.throttle_reason_names) == (4, ("sw_power_cap",))
    assert decode_throttle_reasons(0x8 | 0x40 | 0x80) == ("hw_slowdown", "hw_thermal_slowdown", "hw_power_brake")
    assert decode_throttle_reasons(0x20 | 0x10 | 0x2 | 0x100) == (
        "applications_clocks_setting",
        "sync_boost",
        "sw_thermal_slowdown",
        "display_clocks_setting",
    )
    assert decode_throttle_reasons(0) == ()
    assert decode_throttle_reasons(0x4 | 0x10000) == ("sw_power_cap", "unknown_0x10000")


def test_a_driver_without_clocks_event_reasons_falls_back_to_throttle_reasons() -> None:
    fake = FakeNvml(missing={"nvmlDeviceGetCurrentClocksEventReasons"})  # an older pynvml
    sampler = NvmlSampler(fake)

    samples = [sampler.sample_fast()[0] for _ in range(3)]

    assert all(s.throttle_reason_names == ("gpu_idle",) for s in samples)
    assert fake.calls["nvmlDeviceGetCurrentClocksThrottleReasons"] == 3
    assert "clocks_event_reasons" in sampler.capabilities()[0]


@pytest.mark.parametrize(
    "code", [pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, pynvml.NVML_ERROR_DRIVER_NOT_LOADED]
)
def test_no_driver_means_empty_samples_and_one_log_record(
    code: int, gpu_log: pytest.LogCaptureFixture
) -> None:
    fake = MissingDriverNvml(code)
    clock = Clock()
    sampler = NvmlSampler(fake, clock=clock)

    for _ in range(200):
        assert sampler.sample_fast() == []
        assert sampler.sample_slow() == []
        clock.now += 1.0

    assert fake.calls["nvmlInit"] == 1  # not retried within 5 minutes
    clock.now += 120.0
    assert sampler.sample_fast() == []
    assert fake.calls["nvmlInit"] == 2  # retried after 5 minutes, still no driver, still quiet
    records = gpu_records(gpu_log)
    assert len(records) == 1
    assert records[0].getMessage().startswith("no GPU: ")
    assert not sampler.available
    assert sampler.unavailable_reason is not None and "no GPU" in sampler.unavailable_reason


def test_pynvml_not_installed_means_no_gpu(
    monkeypatch: pytest.MonkeyPatch, gpu_log: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    sampler = NvmlSampler()

    assert [sampler.sample_fast() for _ in range(10)] == [[]] * 10
    assert len(gpu_records(gpu_log)) == 1
    assert "nvidia-ml-py is not installed" in (sampler.unavailable_reason or "")


def test_driver_gone_mid_run_pauses_sampling_and_says_so_once(gpu_log: pytest.LogCaptureFixture) -> None:
    fake = FakeNvml()
    clock = Clock()
    sampler = NvmlSampler(fake, clock=clock)
    assert len(sampler.sample_fast()) == 1

    fake.errors["nvmlDeviceGetMemoryInfo"] = pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH  # driver upgraded
    assert [sampler.sample_fast() for _ in range(50)] == [[]] * 50

    assert fake.calls["nvmlInit"] == 1 and fake.calls["nvmlShutdown"] == 1
    warnings = [r for r in gpu_records(gpu_log) if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "restart modeltop" in warnings[0].getMessage()
    del fake.errors["nvmlDeviceGetMemoryInfo"]
    clock.now += 301.0
    assert len(sampler.sample_fast()) == 1  # re-initialised after the retry interval


def test_fast_tick_makes_no_slow_call_and_costs_under_200us_per_gpu() -> None:
    fake = FakeNvml(device_count=4)
    sampler = NvmlSampler(fake)
    sampler.sample_fast()  # the first tick also learns what is unsupported
    fake.reset_counts()

    for _ in range(10):
        assert len(sampler.sample_fast()) == 4

    assert not {f: fake.calls[f] for f in SLOW_FUNCTIONS if fake.calls[f]}
    per_gpu_tick_us = fake.recorded_us / (10 * 4)  # what these calls cost on the real H200
    assert per_gpu_tick_us < 200, per_gpu_tick_us
    assert fake.calls["nvmlDeviceGetFanSpeed"] == 0


def test_slow_sample_reads_slow_calls_and_caches_them_for_the_ttl() -> None:
    fake = FakeNvml()
    clock = Clock()
    sampler = NvmlSampler(fake, clock=clock, slow_ttl_s=60)

    [slow] = sampler.sample_slow()
    assert slow.pcie_tx_bytes_per_s == 658 * 1024  # NVML says KB/s
    assert slow.pcie_rx_bytes_per_s == 676 * 1024
    assert slow.energy_total_j == pytest.approx(2403.177)  # NVML says mJ
    assert slow.max_sm_clock_mhz == 1980
    assert (slow.bar1_used_bytes, slow.bar1_total_bytes) == (1_703_936, 274_877_906_944)
    assert (slow.ecc_enabled, slow.ecc_enabled_pending) == (True, True)
    assert slow.xid_events == ()
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 2

    clock.now += 59.0
    assert sampler.sample_slow() == [slow]  # cached: same reading, no NVML call
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 2

    clock.now += 2.0
    sampler.sample_slow()
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 4
    sampler.sample_slow(force=True)
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 6
    assert fake.calls["nvmlEventSetCreate"] == 1  # one event set per GPU, kept between reads


def test_xid_events_are_reported_once() -> None:
    fake = FakeNvml()
    sampler = NvmlSampler(fake, slow_ttl_s=0)
    sampler.sample_slow()  # registers for events; Xids before that are not seen

    fake.inject_xid(0, 79)  # "GPU has fallen off the bus"
    fake.inject_xid(0, 48)

    assert sampler.sample_slow()[0].xid_events == (79, 48)
    assert sampler.sample_slow()[0].xid_events == ()


def test_process_memory_is_mapped_to_models() -> None:
    fake = FakeNvml().at(LOADED)  # the capture's load: pid 428 holds 6726 MiB
    samples = NvmlSampler(fake).sample_fast()

    assert samples[0].process_memory_bytes == {428: 6726 * MIB}
    assert map_processes_to_models(samples, {"fraud": {428, 4242}, "churn": {17}}) == {
        "fraud": 6726 * MIB,
        "churn": 0,
    }
    assert map_processes_to_models([], {"fraud": {428}}) == {}  # no GPU: no data, not "0 bytes"


def test_a_model_on_two_gpus_gets_the_sum() -> None:
    fake = FakeNvml(device_count=2).at(LOADED)
    samples = NvmlSampler(fake).sample_fast()

    assert [s.uuid for s in samples][0] != samples[1].uuid
    assert map_processes_to_models(samples, {"fraud": {428}}) == {"fraud": 2 * 6726 * MIB}


def test_importing_the_sampler_is_light() -> None:
    code = (
        "import sys, daemon.sources.nvml; "
        "heavy = {'pynvml', 'textual', 'numpy', 'psutil', 'duckdb'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
