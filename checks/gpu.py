"""gpu: temperature, memory, power, clock throttling, memory errors and Xid events of every NVIDIA GPU.

A model server on a GPU slows down or dies for reasons its own logs rarely name: the GPU got too hot and
cut its clocks, another process took the memory, a memory cell failed. The daemon samples the GPUs through
NVML (daemon/sources/nvml.py: a ~70 us fast tick per GPU; PCIe, energy and Xid events on a slow tick at
most every `slow_interval`) and this module judges the sample. A host without a GPU, a driver or
nvidia-ml-py is `insufficient_data` with the reason "no GPU: <why>": not an alarm, and logged once.

Config stanza (defaults):

    [host.checks.gpu]
    interval = "15s"
    temperature_warn = 83.0   # C. The recorded H200 read 38 C with 50 C of T.Limit margin: its max
    temperature_crit = 88.0   #   operating temperature (margin 0) is 88 C, HW slowdown (margin -2) 90 C;
                              #   warn 5 C before the first, crit at it. Other GPUs differ: see the
                              #   Temperature section of `nvidia-smi -q` and set both from it.
    memory_warn = 95.0        # % of GPU memory in use (NVML counts the ~0.4% the driver reserves). Servers
    memory_crit = 99.0        #   that preallocate sit flat at their reservation (vLLM: 90% by default), so
                              #   90 would warn for ever; set warn just above yours to see a second tenant.
    power_warn = unset        # fraction of the enforced power limit, e.g. 0.98; a busy GPU runs at its
                              #   limit by design (sw_power_cap), so this is off unless asked for
    throttle_warn_reasons = ["hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake"]
    throttle_crit_reasons = ["hw_thermal_slowdown", "hw_power_brake"]
                              # clock-event reasons that warn / are crit. The crit two mean the hardware
                              #   cut clocks by half or more for a cause outside the workload (cooling,
                              #   the power supply). hw_slowdown alone can flicker during P-state changes,
                              #   so it only warns. sw_power_cap and gpu_idle are normal and never alarm.
    ecc_uncorrected_crit = true        # any volatile uncorrected ECC error: data was lost; reset the GPU
    remapped_rows_pending_warn = true  # a memory row remap waits for the next GPU reset
    remapped_rows_failure_crit = true  # a row remap failed: the GPU needs service
    xid_warn = true           # Xid events (driver-reported GPU errors) since the previous slow read
    slow_interval = "60s"     # how often the slow NVML calls (~45 ms per GPU: PCIe, energy) are made

Status: the worst finding decides, and the reason lists the findings worst first, each naming its GPU
("GPU0 NVIDIA H200: 91 C (crit ≥ 88 C); GPU3 NVIDIA H200: clocks throttled by hw_slowdown"); when all is
well it shows the figures ("GPU0 NVIDIA H200: util 35%, mem 91% of 140 GiB, 61 C, 402 W of 700 W; GPU
memory of churn 12 GiB"). A GPU that answers no query, or fewer GPUs than seen since the daemon started
(all of them: "all 2 GPU(s) stopped answering: ..."), is crit: that is a GPU lost, not a host without one.
An Xid warns from the slow read that finds it until the next one (up to `slow_interval`).

Metrics, dims {gpu} = the NVML index ("0", "1", ...), absent when the GPU cannot report them:

    utilization_gpu_percent, utilization_memory_percent   %
    memory_used_bytes, memory_total_bytes                 bytes
    memory_used_percent                                   %
    temperature_celsius                                   C
    power_watts, power_limit_watts                        W
    sm_clock_mhz, mem_clock_mhz                           MHz
    throttle_active                                       1 when a clock-event reason other than gpu_idle holds
    throttle_reason {gpu, reason}                         1 for each active reason (only active ones recorded)
    ecc_volatile_uncorrected, ecc_volatile_corrected      errors since the driver loaded
    remapped_rows_uncorrectable                           rows
    remapped_rows_pending, remapped_rows_failure          0/1
    pcie_tx_bytes_per_second, pcie_rx_bytes_per_second    bytes/s (slow: refreshed every slow_interval)
    energy_joules                                         J since the driver loaded (slow)
    xid_events                                            Xid events in the latest slow read (slow)
    gpu_count (no dims)                                   GPUs answering
    model_gpu_memory_bytes {model}                        GPU memory held by the model's processes, all GPUs
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from checks.base import CheckResult, CheckSpec, Duration, Metric, Status, register, threshold_status, worst

GIB = 1024**3
# The words daemon/sources/nvml.py decodes NVML's clocks-event-reasons mask into (a test keeps them equal);
# unknown bits come out as "unknown_0x...". Checks cannot import the daemon, hence the copy.
THROTTLE_REASONS = (
    "gpu_idle", "applications_clocks_setting", "sw_power_cap", "hw_slowdown", "sync_boost",
    "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake", "display_clocks_setting", "board_limit",
    "reliability",
)
NOT_THROTTLING = frozenset({"gpu_idle"})  # clocks are low because there is no work, not held down
_UNKNOWN_REASON = re.compile(r"^unknown_0x[0-9a-f]+$")
# The Xids an operator meets most (NVIDIA's Xid catalog has them all), to make a reason readable.
XID_NAMES = {
    13: "graphics engine exception", 31: "GPU memory page fault", 43: "GPU stopped processing",
    45: "preemptive cleanup", 48: "double-bit ECC error", 63: "ECC page retirement or row remap",
    64: "ECC page retirement or row remap failed", 74: "NVLink error", 79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate", 94: "contained ECC error", 95: "uncontained ECC error",
}


@dataclass(frozen=True)
class GpuSettings:
    temperature_warn: float = 83.0
    temperature_crit: float = 88.0
    memory_warn: float = 95.0
    memory_crit: float = 99.0
    power_warn: float | None = None
    throttle_warn_reasons: tuple[str, ...] = ("hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown",
                                              "hw_power_brake")
    throttle_crit_reasons: tuple[str, ...] = ("hw_thermal_slowdown", "hw_power_brake")
    ecc_uncorrected_crit: bool = True
    remapped_rows_pending_warn: bool = True
    remapped_rows_failure_crit: bool = True
    xid_warn: bool = True
    slow_interval: Duration = Duration(60)

    def __post_init__(self) -> None:
        """ValueError, phrased to follow "expected", for settings that would silently never fire."""
        for name in ("throttle_warn_reasons", "throttle_crit_reasons"):
            unknown = [w for w in getattr(self, name) if w not in THROTTLE_REASONS and not _UNKNOWN_REASON.match(w)]
            if unknown:
                raise ValueError(f"{name} to hold clock-event reasons ({', '.join(THROTTLE_REASONS)}), "
                                 f"found {', '.join(map(repr, unknown))}")
        if self.power_warn is not None and not 0 < self.power_warn <= 1.5:
            raise ValueError(f"power_warn as a fraction of the power limit such as 0.98, found {self.power_warn:g}")
        if self.slow_interval < 1:
            raise ValueError(f"slow_interval of at least 1s (a slow read blocks ~45 ms per GPU), "
                             f"found {self.slow_interval:g}s")


@dataclass(frozen=True)
class Finding:
    status: Status
    text: str


# (metric name, key in a GPU's dict); the unit is in the name. Values that are None are left out.
GPU_METRICS = (
    ("utilization_gpu_percent", "utilization_gpu_pct"),
    ("utilization_memory_percent", "utilization_memory_pct"),
    ("memory_used_bytes", "memory_used_bytes"),
    ("memory_total_bytes", "memory_total_bytes"),
    ("temperature_celsius", "temperature_c"),
    ("power_watts", "power_w"),
    ("power_limit_watts", "power_limit_w"),
    ("sm_clock_mhz", "sm_clock_mhz"),
    ("mem_clock_mhz", "mem_clock_mhz"),
    ("ecc_volatile_uncorrected", "ecc_volatile_uncorrected"),
    ("ecc_volatile_corrected", "ecc_volatile_corrected"),
    ("remapped_rows_uncorrectable", "remapped_rows_uncorrectable"),
    ("remapped_rows_pending", "remapped_rows_pending"),
    ("remapped_rows_failure", "remapped_rows_failure"),
    ("pcie_tx_bytes_per_second", "pcie_tx_bytes_per_s"),
    ("pcie_rx_bytes_per_second", "pcie_rx_bytes_per_s"),
    ("energy_joules", "energy_total_j"),
)
# A GPU none of these answers is gone (fallen off the bus) rather than short of a sensor.
_VITAL = ("memory_total_bytes", "temperature_c", "utilization_gpu_pct", "power_w")


def evaluate(inputs: Mapping[str, Any], settings: GpuSettings) -> CheckResult:
    """inputs: `gpu_sample` as daemon/sources/gpu.py builds it (see there for its keys)."""
    sample = inputs["gpu_sample"]
    gpus = list(sample.get("gpus") or ())
    seen = int(sample.get("gpus_seen") or 0)
    metrics = [Metric("gpu_count", float(len(gpus)))]
    if not gpus:
        why = sample.get("reason") or "NVML lists no GPU"
        if seen:  # there were GPUs since the daemon started: losing them all is news, not "no GPU"
            return CheckResult(Status.CRIT, f"all {seen} GPU(s) stopped answering: {why}", tuple(metrics))
        return CheckResult(Status.INSUFFICIENT_DATA, f"no GPU: {why}", tuple(metrics))
    findings: list[Finding] = []
    for gpu in gpus:
        findings += judge(gpu, settings)
        metrics += gpu_metrics(gpu)
    if seen > len(gpus):
        findings.append(Finding(Status.CRIT, f"{seen - len(gpus)} of {seen} GPUs no longer listed by NVML "
                                             "(fallen off the bus? see dmesg)"))
    model_memory = sample.get("model_memory_bytes") or {}
    metrics += [Metric("model_gpu_memory_bytes", float(b), {"model": m}) for m, b in sorted(model_memory.items())]
    status = worst([f.status for f in findings])
    if findings:
        ordered = sorted(findings, key=lambda f: -f.status.severity)  # stable: GPU order within a severity
        reason = "; ".join(f.text for f in ordered)
    else:
        reason = summary(gpus, model_memory)
    return CheckResult(status, reason, tuple(metrics))


def judge(gpu: Mapping[str, Any], settings: GpuSettings) -> list[Finding]:
    """What is wrong with one GPU, each finding naming it ("GPU0 NVIDIA H200: 91 C (crit ≥ 88)")."""
    label = f"GPU{gpu['index']} {gpu.get('name') or '?'}"
    if all(gpu.get(key) is None for key in _VITAL):
        return [Finding(Status.CRIT, f"{label}: answers no query (lost? see dmesg for Xid 79)")]
    out: list[Finding] = []

    def against(value: float, warn: float | None, crit: float | None, text: str, unit: str) -> None:
        status = threshold_status(value, warn, crit)
        if status is not Status.OK:
            limit = crit if status is Status.CRIT else warn
            out.append(Finding(status, f"{label}: {text} ({status.value} ≥ {limit:g}{unit})"))

    temp = gpu.get("temperature_c")
    if temp is not None:
        against(float(temp), settings.temperature_warn, settings.temperature_crit, f"{temp:.0f} C", " C")
    used_pct = memory_percent(gpu)
    if used_pct is not None:
        against(used_pct, settings.memory_warn, settings.memory_crit, f"memory {used_pct:.0f}% used", "%")
    power, limit = gpu.get("power_w"), gpu.get("power_limit_w")
    if settings.power_warn is not None and power is not None and limit:
        ratio = float(power) / float(limit)
        if ratio >= settings.power_warn:
            out.append(Finding(Status.WARN, f"{label}: {power:.0f} W, {ratio:.0%} of its {limit:.0f} W limit "
                                            f"(warn ≥ {settings.power_warn:.0%})"))
    reasons = tuple(gpu.get("throttle_reason_names") or ())
    crit_hits = [r for r in reasons if r in settings.throttle_crit_reasons]
    warn_hits = [r for r in reasons if r in settings.throttle_warn_reasons and r not in crit_hits]
    if crit_hits or warn_hits:
        status = Status.CRIT if crit_hits else Status.WARN
        out.append(Finding(status, f"{label}: clocks throttled by {', '.join(crit_hits + warn_hits)}"))
    uncorrected = gpu.get("ecc_volatile_uncorrected")
    if settings.ecc_uncorrected_crit and uncorrected:
        out.append(Finding(Status.CRIT, f"{label}: {uncorrected} uncorrected ECC error(s) since the driver "
                                        "loaded (drain it and reset the GPU)"))
    if settings.remapped_rows_failure_crit and gpu.get("remapped_rows_failure"):
        out.append(Finding(Status.CRIT, f"{label}: a memory row remap failed (the GPU needs service)"))
    if settings.remapped_rows_pending_warn and gpu.get("remapped_rows_pending"):
        out.append(Finding(Status.WARN, f"{label}: a memory row remap is pending (reset the GPU to apply it)"))
    xids = gpu.get("xid_events")
    if settings.xid_warn and xids:
        out.append(Finding(Status.WARN, f"{label}: Xid {describe_xids(xids)} (see dmesg)"))
    return out


def describe_xids(xids: Any) -> str:
    """(79, 13, 13) -> "79 (GPU has fallen off the bus), 13 ×2 (graphics engine exception)"."""
    counts: dict[int, int] = {}
    for xid in xids:
        counts[int(xid)] = counts.get(int(xid), 0) + 1
    parts = []
    for xid, n in counts.items():
        text = str(xid) + (f" ×{n}" if n > 1 else "")
        parts.append(f"{text} ({XID_NAMES[xid]})" if xid in XID_NAMES else text)
    return ", ".join(parts)


def memory_percent(gpu: Mapping[str, Any]) -> float | None:
    used, total = gpu.get("memory_used_bytes"), gpu.get("memory_total_bytes")
    return None if used is None or not total else 100.0 * float(used) / float(total)


def gpu_metrics(gpu: Mapping[str, Any]) -> list[Metric]:
    dims = {"gpu": str(gpu["index"])}
    out = [Metric(name, float(gpu[key]), dims) for name, key in GPU_METRICS if gpu.get(key) is not None]
    used_pct = memory_percent(gpu)
    if used_pct is not None:
        out.append(Metric("memory_used_percent", used_pct, dims))
    if gpu.get("throttle_reasons") is not None or gpu.get("throttle_reason_names"):
        reasons = tuple(gpu.get("throttle_reason_names") or ())
        out.append(Metric("throttle_active", float(any(r not in NOT_THROTTLING for r in reasons)), dims))
        out += [Metric("throttle_reason", 1.0, {**dims, "reason": r}) for r in reasons]
    if gpu.get("xid_events") is not None:
        out.append(Metric("xid_events", float(len(gpu["xid_events"])), dims))
    return out


def summary(gpus: list[Mapping[str, Any]], model_memory: Mapping[str, int]) -> str:
    """The all-clear reason: the figures an operator glances at."""
    def known(key: str) -> list[float]:
        return [float(g[key]) for g in gpus if g.get(key) is not None]

    if len(gpus) == 1:
        g = gpus[0]
        parts = []
        if g.get("utilization_gpu_pct") is not None:
            parts.append(f"util {g['utilization_gpu_pct']:.0f}%")
        if (pct := memory_percent(g)) is not None:
            parts.append(f"mem {pct:.0f}% of {_gib(g['memory_total_bytes'])}")
        if g.get("temperature_c") is not None:
            parts.append(f"{g['temperature_c']:.0f} C")
        if g.get("power_w") is not None:
            limit = f" of {g['power_limit_w']:.0f} W" if g.get("power_limit_w") else ""
            parts.append(f"{g['power_w']:.0f} W{limit}")
        text = f"GPU{g['index']} {g.get('name') or '?'}: " + (", ".join(parts) or "no figures")
    else:
        names = [g.get("name") or "?" for g in gpus]
        kinds = f"{len(gpus)}× {names[0]}" if len(set(names)) == 1 else ", ".join(names)
        parts = []
        if util := known("utilization_gpu_pct"):
            lo, hi = min(util), max(util)
            parts.append(f"util {lo:.0f}%" if lo == hi else f"util {lo:.0f}-{hi:.0f}%")
        if mem := [p for g in gpus if (p := memory_percent(g)) is not None]:
            parts.append(f"mem up to {max(mem):.0f}%")
        if temps := known("temperature_c"):
            parts.append(f"up to {max(temps):.0f} C")
        if power := known("power_w"):
            parts.append(f"{sum(power):.0f} W")
        text = f"{len(gpus)} GPUs ({kinds}): " + (", ".join(parts) or "no figures")
    holding = sorted((m, b) for m, b in model_memory.items() if b)  # CPU-only models stay out of the line
    if holding:
        text += "; GPU memory of " + ", ".join(f"{m} {_gib(b)}" for m, b in holding)
    return text


def _gib(n: float) -> str:
    """Bytes as people read GPU memory: "140 GiB", "6.6 GiB", "512 MiB"."""
    gib = float(n) / GIB
    if gib >= 10:
        return f"{gib:.0f} GiB"
    return f"{gib:.1f} GiB" if gib >= 1 else f"{gib * 1024:.0f} MiB"


SPEC = register(
    CheckSpec(
        name="gpu",
        scope="host",
        settings=GpuSettings,
        inputs=("gpu_sample",),
        evaluate=evaluate,
        default_interval=15.0,
        description="temperature, memory, power, throttling, ECC/row-remap errors and Xids of NVIDIA GPUs",
    )
)
