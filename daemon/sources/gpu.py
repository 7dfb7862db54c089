"""The `gpu_sample` input of the gpu check: NVML readings of every GPU, and GPU memory per model.

One NvmlSampler serves the whole daemon (NVML handles and the slow-call cache are state, and InputContext
is shared and rebuilt on reload), created on the first gpu tick, so a config without the gpu check never
loads pynvml. GPU memory is mapped to models through the pids the `process` check found for them
(daemon/sources/process.py `model_pids()`), so a model gets `model_gpu_memory_bytes` only when it has a
`[models.checks.process]` stanza.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from daemon.inputs import InputContext, provides
from daemon.sources.gpu_input import GpuInput
from daemon.sources.nvml import DEFAULT_SLOW_TTL_S, NvmlSampler

_LOCK = threading.Lock()
_INPUT: GpuInput | None = None
_MODEL_PIDS: Callable[[], Mapping[str, set[int]]] | None = None


def gpu_input() -> GpuInput:
    """The daemon's one GpuInput, made on first use (constructing it does not touch the driver)."""
    global _INPUT
    with _LOCK:
        if _INPUT is None:
            _INPUT = GpuInput(NvmlSampler())
        return _INPUT


def model_pids() -> Mapping[str, set[int]]:
    """model -> its serving pids, from the process source when it is there; {} otherwise."""
    global _MODEL_PIDS
    if _MODEL_PIDS is None:
        try:
            from daemon.sources.process import model_pids as found
        except ImportError:  # no process source (or no psutil): GPU figures without the per-model split
            def found() -> Mapping[str, set[int]]:
                return {}
        _MODEL_PIDS = found
    return _MODEL_PIDS()


def slow_interval(ctx: Any) -> float:
    """The gpu check's `slow_interval` once InputContext carries the check being run (`ctx.check`);
    until then the sampler's default TTL (60 s, the setting's default too)."""
    settings = getattr(getattr(ctx, "check", None), "settings", None)
    return float(getattr(settings, "slow_interval", DEFAULT_SLOW_TTL_S))


@provides("gpu_sample")
def _gpu_sample(ctx: InputContext) -> dict[str, Any]:
    return gpu_input().sample(model_pids(), slow_interval(ctx))
