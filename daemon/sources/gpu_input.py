"""The gpu check's input: one NvmlSampler reading turned into the plain dict checks/gpu.py judges.

Kept apart from the provider (daemon/sources/gpu.py) so that it needs only the stdlib and the NVML layer:
bench/gpu_check.py runs it on a bare GPU machine that has no duckdb or psutil.

The dict (`gpu_sample`):

    available           bool: at least one GPU answered this tick
    reason              why there is no GPU ("no NVIDIA driver ..."), None when there is one
    gpus                one dict per GPU: the fields of GpuSample (index, uuid, name, utilization_gpu_pct,
                        utilization_memory_pct, memory_used_bytes, memory_total_bytes, temperature_c,
                        power_w, power_limit_w, sm_clock_mhz, mem_clock_mhz, fan_speed_pct,
                        throttle_reasons, throttle_reason_names, ecc_volatile_uncorrected,
                        ecc_volatile_corrected, remapped_rows_*, process_memory_bytes) plus, from the slow
                        read (at most `slow_ttl_s` old), pcie_tx_bytes_per_s, pcie_rx_bytes_per_s,
                        energy_total_j and xid_events (None where the slow read has no answer)
    gpus_seen           the most GPUs seen at once since this input was made: fewer now means one was lost
    model_memory_bytes  {model: bytes of GPU memory its processes hold, over all GPUs}; {} without GPUs
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from daemon.sources.nvml import GpuSample, NvmlSampler, map_processes_to_models

FAST_FIELDS = tuple(f.name for f in dataclasses.fields(GpuSample) if f.name != "sampled_at")
SLOW_FIELDS = ("pcie_tx_bytes_per_s", "pcie_rx_bytes_per_s", "energy_total_j", "xid_events")
_NO_SLOW = dict.fromkeys(SLOW_FIELDS)


class GpuInput:
    """Reads the fast tick every call and the slow one through the sampler's TTL cache."""

    def __init__(self, sampler: NvmlSampler) -> None:
        self.sampler = sampler
        self.gpus_seen = 0

    def sample(self, model_pids: Mapping[str, set[int]] | None = None, slow_ttl_s: float | None = None) -> dict:
        """The `gpu_sample` dict; `slow_ttl_s` (the check's slow_interval) bounds how old slow figures are."""
        sampler = self.sampler
        if slow_ttl_s is not None:
            sampler.slow_ttl_s = float(slow_ttl_s)
        fast = sampler.sample_fast()
        if not fast:
            reason = sampler.unavailable_reason or "NVML lists no GPU"
            return {"available": False, "reason": reason.removeprefix("no GPU: "), "gpus": [],
                    "gpus_seen": self.gpus_seen, "model_memory_bytes": {}}
        slow = {s.index: s for s in sampler.sample_slow()}  # cached: NVML is asked at most once per TTL
        gpus = []
        for reading in fast:
            gpu = {name: getattr(reading, name) for name in FAST_FIELDS}
            slow_reading = slow.get(reading.index)
            gpu.update(_NO_SLOW if slow_reading is None else {n: getattr(slow_reading, n) for n in SLOW_FIELDS})
            gpus.append(gpu)
        self.gpus_seen = max(self.gpus_seen, len(gpus))
        memory = map_processes_to_models(fast, model_pids) if model_pids else {}
        return {"available": True, "reason": None, "gpus": gpus, "gpus_seen": self.gpus_seen,
                "model_memory_bytes": memory}

