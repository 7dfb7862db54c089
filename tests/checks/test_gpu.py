"""gpu: each threshold on literal GPU samples, and what an operator reads in the reason."""

import pytest

from checks.base import Status
from checks.gpu import GpuSettings, evaluate

GIB = 1024**3
# The recorded H200 at rest (tests/fixtures/nvml/h200-probe.json), as daemon/sources/gpu_input.py shapes it.
H200 = {
    "index": 0, "uuid": "GPU-00000000-1111-2222-3333-444444444444", "name": "NVIDIA H200",
    "utilization_gpu_pct": 0, "utilization_memory_pct": 0, "memory_used_bytes": 644_939_776,
    "memory_total_bytes": 150_754_820_096, "temperature_c": 37, "power_w": 114.172, "power_limit_w": 700.0,
    "sm_clock_mhz": 900, "mem_clock_mhz": 3201, "fan_speed_pct": None, "throttle_reasons": 1,
    "throttle_reason_names": ("gpu_idle",), "ecc_volatile_uncorrected": 0, "ecc_volatile_corrected": 0,
    "remapped_rows_correctable": 0, "remapped_rows_uncorrectable": 0, "remapped_rows_pending": False,
    "remapped_rows_failure": False, "process_memory_bytes": {}, "pcie_tx_bytes_per_s": 673_792,
    "pcie_rx_bytes_per_s": 692_224, "energy_total_j": 2403.177, "xid_events": (),
}


def sample(*gpus, **extra):
    return {"available": bool(gpus), "reason": None, "gpus": list(gpus), "gpus_seen": len(gpus),
            "model_memory_bytes": {}, **extra}


def gpu(**overrides):
    return {**H200, **overrides}


def run(*gpus, settings=None, **extra):
    return evaluate({"gpu_sample": sample(*gpus, **extra)}, settings or GpuSettings())


def metric(result, name, **dims):
    return next(m.value for m in result.metrics if m.name == name and dict(m.dims) == dims)


def test_an_idle_h200_is_ok_and_its_figures_are_recorded_per_gpu():
    result = run(gpu(), model_memory_bytes={"churn": 6726 * 1024**2, "fraud": 0})

    assert result.status is Status.OK
    assert result.reason == ("GPU0 NVIDIA H200: util 0%, mem 0% of 140 GiB, 37 C, 114 W of 700 W; "
                             "GPU memory of churn 6.6 GiB")  # fraud holds none: not in the line
    assert metric(result, "temperature_celsius", gpu="0") == 37
    assert metric(result, "memory_total_bytes", gpu="0") == 150_754_820_096
    assert metric(result, "memory_used_percent", gpu="0") == pytest.approx(0.428, abs=1e-3)
    assert metric(result, "power_watts", gpu="0") == pytest.approx(114.172)
    assert metric(result, "pcie_rx_bytes_per_second", gpu="0") == 692_224
    assert metric(result, "energy_joules", gpu="0") == pytest.approx(2403.177)
    assert metric(result, "throttle_active", gpu="0") == 0  # idle clocks are not throttling
    assert metric(result, "throttle_reason", gpu="0", reason="gpu_idle") == 1
    assert metric(result, "model_gpu_memory_bytes", model="churn") == 6726 * 1024**2
    assert metric(result, "model_gpu_memory_bytes", model="fraud") == 0
    assert metric(result, "gpu_count") == 1


@pytest.mark.parametrize(("temp", "status", "reason"), [
    (82, Status.OK, None),
    (83, Status.WARN, "GPU0 NVIDIA H200: 83 C (warn ≥ 83 C)"),
    (91, Status.CRIT, "GPU0 NVIDIA H200: 91 C (crit ≥ 88 C)"),
])
def test_temperature(temp, status, reason):
    result = run(gpu(temperature_c=temp))
    assert result.status is status
    if reason:
        assert result.reason == reason


def test_memory_of_a_preallocating_server_is_ok_and_a_full_gpu_is_not():
    total = H200["memory_total_bytes"]
    assert run(gpu(memory_used_bytes=int(0.904 * total))).status is Status.OK  # vLLM's 90% + the driver's
    warn = run(gpu(memory_used_bytes=int(0.96 * total)))
    assert (warn.status, warn.reason) == (Status.WARN, "GPU0 NVIDIA H200: memory 96% used (warn ≥ 95%)")
    assert run(gpu(memory_used_bytes=int(0.995 * total))).status is Status.CRIT
    assert run(gpu(memory_used_bytes=int(0.5 * total)), settings=GpuSettings(memory_warn=40)).status is Status.WARN


def test_power_at_its_limit_alarms_only_when_asked():
    at_limit = gpu(power_w=696.0, throttle_reason_names=("sw_power_cap",))
    assert run(at_limit).status is Status.OK
    result = run(at_limit, settings=GpuSettings(power_warn=0.95))
    assert result.status is Status.WARN
    assert result.reason == "GPU0 NVIDIA H200: 696 W, 99% of its 700 W limit (warn ≥ 95%)"


def test_throttle_reasons_are_decoded_into_the_reason_and_only_hardware_ones_alarm():
    capped = run(gpu(throttle_reason_names=("sw_power_cap",)))
    assert capped.status is Status.OK  # a busy GPU at its power cap is working as designed
    assert metric(capped, "throttle_active", gpu="0") == 1
    assert metric(capped, "throttle_reason", gpu="0", reason="sw_power_cap") == 1

    slowed = run(gpu(throttle_reason_names=("sw_power_cap", "hw_slowdown")))
    assert (slowed.status, slowed.reason) == (Status.WARN, "GPU0 NVIDIA H200: clocks throttled by hw_slowdown")

    hot = run(gpu(throttle_reason_names=("hw_slowdown", "hw_thermal_slowdown")))
    assert hot.status is Status.CRIT
    assert hot.reason == "GPU0 NVIDIA H200: clocks throttled by hw_thermal_slowdown, hw_slowdown"

    quiet = GpuSettings(throttle_warn_reasons=(), throttle_crit_reasons=())
    assert run(gpu(throttle_reason_names=("hw_thermal_slowdown",)), settings=quiet).status is Status.OK


def test_memory_errors_say_what_to_do():
    ecc = run(gpu(ecc_volatile_uncorrected=2))
    assert ecc.status is Status.CRIT
    assert ecc.reason == ("GPU0 NVIDIA H200: 2 uncorrected ECC error(s) since the driver loaded "
                          "(drain it and reset the GPU)")
    pending = run(gpu(remapped_rows_pending=True))
    assert pending.status is Status.WARN and "reset the GPU to apply it" in pending.reason
    failed = run(gpu(remapped_rows_failure=True))
    assert failed.status is Status.CRIT and "needs service" in failed.reason
    assert run(gpu(ecc_volatile_uncorrected=2), settings=GpuSettings(ecc_uncorrected_crit=False)).status is Status.OK


def test_xid_events_warn_with_their_codes_and_names():
    result = run(gpu(xid_events=(79, 13, 13, 999)))
    assert result.status is Status.WARN
    assert result.reason == ("GPU0 NVIDIA H200: Xid 79 (GPU has fallen off the bus), "
                             "13 ×2 (graphics engine exception), 999 (see dmesg)")
    assert metric(result, "xid_events", gpu="0") == 4
    assert run(gpu(xid_events=None)).status is Status.OK  # the slow read had no answer: nothing to judge


def test_the_worst_gpu_decides_and_every_finding_names_its_gpu():
    result = run(gpu(index=0, temperature_c=84), gpu(index=1, uuid="GPU-1", ecc_volatile_uncorrected=1),
                 gpu(index=2, uuid="GPU-2"))
    assert result.status is Status.CRIT
    assert result.reason.startswith("GPU1 NVIDIA H200: 1 uncorrected ECC error(s)")  # worst first
    assert result.reason.endswith("; GPU0 NVIDIA H200: 84 C (warn ≥ 83 C)")
    assert metric(result, "temperature_celsius", gpu="2") == 37


def test_several_healthy_gpus_are_summarised():
    result = run(gpu(index=0), gpu(index=1, utilization_gpu_pct=100, temperature_c=55, power_w=626.3))
    assert result.status is Status.OK
    assert result.reason == "2 GPUs (2× NVIDIA H200): util 0-100%, mem up to 0%, up to 55 C, 740 W"


def test_no_gpu_is_insufficient_data_not_an_alarm():
    result = evaluate({"gpu_sample": {"available": False, "reason": "no NVIDIA driver", "gpus": [],
                                      "gpus_seen": 0, "model_memory_bytes": {}}}, GpuSettings())
    assert (result.status, result.reason) == (Status.INSUFFICIENT_DATA, "no GPU: no NVIDIA driver")
    assert [(m.name, m.value) for m in result.metrics] == [("gpu_count", 0.0)]


def test_losing_a_gpu_that_was_there_is_critical():
    all_gone = evaluate({"gpu_sample": {"available": False, "reason": "NVML stopped answering", "gpus": [],
                                        "gpus_seen": 2, "model_memory_bytes": {}}}, GpuSettings())
    assert all_gone.status is Status.CRIT
    assert all_gone.reason == "all 2 GPU(s) stopped answering: NVML stopped answering"

    one_gone = run(gpu(), gpus_seen=2)
    assert one_gone.status is Status.CRIT and "1 of 2 GPUs no longer listed" in one_gone.reason

    silent = run(gpu(index=1, memory_total_bytes=None, memory_used_bytes=None, temperature_c=None,
                     utilization_gpu_pct=None, power_w=None))
    assert silent.status is Status.CRIT and silent.reason.startswith("GPU1 NVIDIA H200: answers no query")


@pytest.mark.parametrize(("settings", "message"), [
    ({"throttle_warn_reasons": ("hw_slowdon",)}, "throttle_warn_reasons to hold clock-event reasons"),
    ({"throttle_crit_reasons": ("thermal",)}, "found 'thermal'"),
    ({"power_warn": 98.0}, "power_warn as a fraction of the power limit"),
    ({"slow_interval": 0.0}, "slow_interval of at least 1s"),
])
def test_settings_that_would_never_fire_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        GpuSettings(**settings)
    GpuSettings(throttle_warn_reasons=("unknown_0x800",))  # a bit a newer driver sets is fine
