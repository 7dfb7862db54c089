"""NVML (GPU) sampling: a cheap fast tick, slow calls behind a TTL, and "no GPU" instead of an error storm.

NVML calls differ in cost by four orders of magnitude (tests/fixtures/nvml/h200-probe.json, a real H200):
most answer in ~2 us, but PCIe throughput blocks ~21 ms per direction, total energy ~3 ms, max clocks
~1.3 ms and BAR1/ECC mode ~0.16 ms. So `sample_fast()` makes only the cheap calls (~40 us of NVML time
per GPU on the H200) and `sample_slow()` makes the rest, at most once per `slow_ttl_s`.

A call a GPU does not support is asked once, recorded in a per-GPU capability map and never asked again;
its field reads None. A host without the library, the driver or any GPU logs "no GPU" once and then
returns empty samples, retrying the init at most every `retry_init_s` (5 minutes).

Only stdlib and pynvml (from nvidia-ml-py, imported lazily on the first sample) so that importing this
module stays cheap and the GPU check script can run on a bare machine.
"""

from __future__ import annotations

import enum
import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

log = logging.getLogger("modeltop.gpu")

MIB: Final = 1024 * 1024
DEFAULT_SLOW_TTL_S: Final = 60.0
DEFAULT_RETRY_INIT_S: Final = 300.0
_MAX_XIDS_PER_READ: Final = 64


class _NotAvailable(enum.Enum):
    """Type of the NOT_AVAILABLE sentinel (an enum member, so it is a typed singleton that pickles)."""

    NOT_AVAILABLE = "NOT_AVAILABLE"

    def __repr__(self) -> str:
        return "NOT_AVAILABLE"

    def __bool__(self) -> bool:
        return False


NOT_AVAILABLE: Final = _NotAvailable.NOT_AVAILABLE
"""What the query helper returns when a GPU cannot answer; fields built from it read None."""

# NVML error codes, with the values of nvml.h as a fallback for a module that lacks the constants.
_ERROR_CODE_FALLBACK: Final[Mapping[str, int]] = {
    "NVML_ERROR_UNINITIALIZED": 1,
    "NVML_ERROR_NOT_SUPPORTED": 3,
    "NVML_ERROR_NO_PERMISSION": 4,
    "NVML_ERROR_NOT_FOUND": 6,
    "NVML_ERROR_DRIVER_NOT_LOADED": 9,
    "NVML_ERROR_TIMEOUT": 10,
    "NVML_ERROR_FUNCTION_NOT_FOUND": 13,
    "NVML_ERROR_LIB_RM_VERSION_MISMATCH": 18,
}
# "This GPU/driver cannot answer this call": permanent for the life of the driver, so remember it.
_CAPABILITY_ERRORS: Final = (
    "NVML_ERROR_NOT_SUPPORTED",
    "NVML_ERROR_NOT_FOUND",
    "NVML_ERROR_NO_PERMISSION",
    "NVML_ERROR_FUNCTION_NOT_FOUND",
)
# "The library itself is gone" (driver unloaded or upgraded under us): stop and re-init later.
_LIBRARY_GONE_ERRORS: Final = (
    "NVML_ERROR_UNINITIALIZED",
    "NVML_ERROR_DRIVER_NOT_LOADED",
    "NVML_ERROR_LIB_RM_VERSION_MISMATCH",
)

# Arguments of the calls below, by pynvml constant name, with nvml.h values as the fallback.
_CONSTANT_FALLBACK: Final[Mapping[str, int]] = {
    "NVML_TEMPERATURE_GPU": 0,
    "NVML_CLOCK_SM": 1,
    "NVML_CLOCK_MEM": 2,
    "NVML_MEMORY_ERROR_TYPE_CORRECTED": 0,
    "NVML_MEMORY_ERROR_TYPE_UNCORRECTED": 1,
    "NVML_VOLATILE_ECC": 0,
    "NVML_PCIE_UTIL_TX_BYTES": 0,
    "NVML_PCIE_UTIL_RX_BYTES": 1,
    "nvmlEventTypeXidCriticalError": 0x8,
}


def resolve_constant(nvml: Any, name: str) -> int:
    """The value of a pynvml constant, or nvml.h's value when this pynvml lacks it."""
    value = getattr(nvml, name, None)
    return _CONSTANT_FALLBACK[name] if value is None else int(value)


@dataclass(frozen=True, slots=True)
class NvmlCall:
    """One per-device NVML query: its capability-map key, the pynvml function and its constant arguments."""

    key: str
    function: str
    args: tuple[str, ...] = ()

    def bind(self, nvml: Any) -> tuple[Callable[..., Any] | None, tuple[int, ...]]:
        """The function (None when this pynvml lacks it) and resolved arguments, minus the device handle."""
        return getattr(nvml, self.function, None), tuple(resolve_constant(nvml, a) for a in self.args)


# The fast tick: each ~2-8 us on the H200 capture (~40 us per GPU in all). Order is the field order.
FAST_CALLS: Final[tuple[NvmlCall, ...]] = (
    NvmlCall("memory_info", "nvmlDeviceGetMemoryInfo"),
    NvmlCall("utilization_rates", "nvmlDeviceGetUtilizationRates"),
    NvmlCall("temperature_gpu", "nvmlDeviceGetTemperature", ("NVML_TEMPERATURE_GPU",)),
    NvmlCall("power_usage", "nvmlDeviceGetPowerUsage"),
    NvmlCall("power_limit", "nvmlDeviceGetEnforcedPowerLimit"),
    NvmlCall("clock_sm", "nvmlDeviceGetClockInfo", ("NVML_CLOCK_SM",)),
    NvmlCall("clock_mem", "nvmlDeviceGetClockInfo", ("NVML_CLOCK_MEM",)),
    NvmlCall("fan_speed", "nvmlDeviceGetFanSpeed"),
    NvmlCall("clocks_event_reasons", "nvmlDeviceGetCurrentClocksEventReasons"),
    NvmlCall(
        "ecc_volatile_uncorrected",
        "nvmlDeviceGetTotalEccErrors",
        ("NVML_MEMORY_ERROR_TYPE_UNCORRECTED", "NVML_VOLATILE_ECC"),
    ),
    NvmlCall(
        "ecc_volatile_corrected",
        "nvmlDeviceGetTotalEccErrors",
        ("NVML_MEMORY_ERROR_TYPE_CORRECTED", "NVML_VOLATILE_ECC"),
    ),
    NvmlCall("remapped_rows", "nvmlDeviceGetRemappedRows"),
    NvmlCall("compute_processes", "nvmlDeviceGetComputeRunningProcesses"),
    NvmlCall("graphics_processes", "nvmlDeviceGetGraphicsRunningProcesses"),
)
# Drivers older than R535 only have the "throttle" spelling; asked only when the one above is unavailable.
THROTTLE_REASONS_FALLBACK: Final = NvmlCall(
    "clocks_throttle_reasons", "nvmlDeviceGetCurrentClocksThrottleReasons"
)
# The slow tick: PCIe ~21 ms each (NVML samples the link for 20 ms), energy ~3 ms, max clock ~1.3 ms,
# BAR1 and ECC mode ~0.16 ms. Xid events are drained separately (see NvmlSampler._read_xids).
SLOW_CALLS: Final[tuple[NvmlCall, ...]] = (
    NvmlCall("pcie_tx", "nvmlDeviceGetPcieThroughput", ("NVML_PCIE_UTIL_TX_BYTES",)),
    NvmlCall("pcie_rx", "nvmlDeviceGetPcieThroughput", ("NVML_PCIE_UTIL_RX_BYTES",)),
    NvmlCall("total_energy", "nvmlDeviceGetTotalEnergyConsumption"),
    NvmlCall("max_clock_sm", "nvmlDeviceGetMaxClockInfo", ("NVML_CLOCK_SM",)),
    NvmlCall("bar1_memory_info", "nvmlDeviceGetBAR1MemoryInfo"),
    NvmlCall("ecc_mode", "nvmlDeviceGetEccMode"),
)
XID_EVENTS_KEY: Final = "xid_events"

# Clock event ("throttle") reasons: pynvml constant suffix, the word we report, nvml.h's bit.
_THROTTLE_REASONS: Final[tuple[tuple[str, str, int], ...]] = (
    ("GpuIdle", "gpu_idle", 0x1),
    ("ApplicationsClocksSetting", "applications_clocks_setting", 0x2),
    ("SwPowerCap", "sw_power_cap", 0x4),
    ("HwSlowdown", "hw_slowdown", 0x8),
    ("SyncBoost", "sync_boost", 0x10),
    ("SwThermalSlowdown", "sw_thermal_slowdown", 0x20),
    ("HwThermalSlowdown", "hw_thermal_slowdown", 0x40),
    ("HwPowerBrakeSlowdown", "hw_power_brake", 0x80),
    ("DisplayClockSetting", "display_clocks_setting", 0x100),
    ("BoardLimit", "board_limit", 0x200),
    ("Reliability", "reliability", 0x400),
)


def throttle_reason_table(nvml: Any = None) -> tuple[tuple[int, str], ...]:
    """(bit, word) pairs, taking bits from pynvml's constants when present so new drivers stay right."""
    table = []
    for suffix, word, fallback in _THROTTLE_REASONS:
        bit = getattr(nvml, "nvmlClocksEventReason" + suffix, None)
        if bit is None:
            bit = getattr(nvml, "nvmlClocksThrottleReason" + suffix, None)
        table.append((fallback if bit is None else int(bit), word))
    return tuple(table)


DEFAULT_THROTTLE_TABLE: Final = throttle_reason_table(None)


def decode_throttle_reasons(
    mask: int, table: Iterable[tuple[int, str]] = DEFAULT_THROTTLE_TABLE
) -> tuple[str, ...]:
    """Words for the set bits of a clocks-event-reasons mask; bits we do not know come out as unknown_0x..."""
    words = []
    known = 0
    for bit, word in table:
        known |= bit
        if mask & bit:
            words.append(word)
    rest = mask & ~known
    bit = 1
    while rest:
        if rest & bit:
            words.append(f"unknown_{bit:#x}")
            rest &= ~bit
        bit <<= 1
    return tuple(words)


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One fast-tick reading of one GPU. None means this GPU cannot report that value (or failed to now)."""

    index: int
    uuid: str
    name: str
    sampled_at: float  # wall-clock seconds (time.time()), for the store
    utilization_gpu_pct: int | None
    utilization_memory_pct: int | None
    memory_used_bytes: int | None  # NVML v1: includes the ~600 MiB the driver reserves; nvidia-smi does not
    memory_total_bytes: int | None
    temperature_c: int | None
    power_w: float | None
    power_limit_w: float | None
    sm_clock_mhz: int | None
    mem_clock_mhz: int | None
    fan_speed_pct: int | None  # None on passively cooled data-centre GPUs (H100/H200)
    throttle_reasons: int | None  # the raw NVML clocks-event-reasons bitmask
    throttle_reason_names: tuple[str, ...]  # the mask decoded, e.g. ("sw_power_cap",)
    ecc_volatile_uncorrected: int | None  # since the driver loaded
    ecc_volatile_corrected: int | None
    remapped_rows_correctable: int | None
    remapped_rows_uncorrectable: int | None
    remapped_rows_pending: bool | None  # a remap waits for a GPU reset
    remapped_rows_failure: bool | None  # a remap failed: the GPU needs service
    process_memory_bytes: dict[int, int] | None  # host pid -> bytes, compute and graphics processes


@dataclass(frozen=True, slots=True)
class GpuSlowSample:
    """One slow-tick reading of one GPU (values that cost milliseconds or change rarely)."""

    index: int
    uuid: str
    sampled_at: float  # wall-clock seconds when this reading was taken (it may be up to slow_ttl_s old)
    read_duration_s: float  # what this GPU's slow calls cost, to watch the sampler's own price
    pcie_tx_bytes_per_s: int | None
    pcie_rx_bytes_per_s: int | None
    energy_total_j: float | None  # since the driver loaded; differences give energy per interval
    max_sm_clock_mhz: int | None
    bar1_used_bytes: int | None
    bar1_total_bytes: int | None
    ecc_enabled: bool | None
    ecc_enabled_pending: bool | None  # the mode after the next reboot
    xid_events: tuple[int, ...] | None  # Xid error codes seen since the previous slow read


def map_processes_to_models(
    gpu_samples: Iterable[GpuSample], model_pids: Mapping[str, set[int]]
) -> dict[str, int]:
    """Bytes of GPU memory per model, summed over GPUs, from each model's set of pids.

    Returns {} when there are no GPU samples ("no data" is not "0 bytes"); otherwise every model gets an
    entry, 0 when none of its pids holds GPU memory. NVML reports host pids, so a daemon inside a container
    needs the host pid namespace for this to match.
    """
    by_pid: dict[int, int] = {}
    seen = False
    for sample in gpu_samples:
        seen = True
        for pid, used in (sample.process_memory_bytes or {}).items():
            by_pid[pid] = by_pid.get(pid, 0) + used
    if not seen:
        return {}
    return {model: sum(by_pid.get(pid, 0) for pid in pids) for model, pids in model_pids.items()}


class _NvmlGone(Exception):
    """The NVML library stopped answering for all GPUs (driver unloaded or upgraded)."""


@dataclass(slots=True)
class _Gpu:
    index: int
    handle: Any
    uuid: str
    name: str
    unavailable: dict[str, str]  # call key -> why (e.g. "NotSupported"); the capability map
    event_set: Any = None


def _error_name(exc: BaseException) -> str:
    return type(exc).__name__.removeprefix("NVMLError_")


def _present(value: Any) -> Any:
    return None if value is NOT_AVAILABLE else value


class NvmlSampler:
    """Samples all GPUs through NVML; safe to call the fast and the slow tick from different threads.

    `nvml` is the pynvml module or something shaped like it (tests pass tests/fakes/nvml.py); by default
    pynvml is imported on the first sample, so constructing a sampler never touches the driver.
    """

    def __init__(
        self,
        nvml: Any = None,
        *,
        slow_ttl_s: float = DEFAULT_SLOW_TTL_S,
        retry_init_s: float = DEFAULT_RETRY_INIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slow_ttl_s = slow_ttl_s
        self.retry_init_s = retry_init_s
        self._clock = clock
        self._module = nvml
        self._nvml: Any = None  # the module in use, set by a successful init
        self._gpus: list[_Gpu] | None = None  # None: not initialised (or lost)
        self._next_init_at: float | None = None
        self._reason: str | None = None  # why there is no GPU, when there is none
        self._logged_reason: str | None = None
        self._warned: set[tuple[int, str]] = set()
        self._init_lock = threading.Lock()
        self._slow_lock = threading.Lock()
        self._slow_cache: list[GpuSlowSample] | None = None
        self._slow_at = 0.0
        self._fast: tuple[tuple[str, Callable[..., Any] | None, tuple[int, ...]], ...] = ()
        self._slow: tuple[tuple[str, Callable[..., Any] | None, tuple[int, ...]], ...] = ()
        self._throttle_fallback: tuple[str, Callable[..., Any] | None, tuple[int, ...]] = ("", None, ())
        self._throttle_table = DEFAULT_THROTTLE_TABLE
        self._nvml_error: type[BaseException] = Exception
        self._mismatch_error: tuple[type[BaseException], ...] = ()
        self._capability_codes: frozenset[int] = frozenset()
        self._gone_codes: frozenset[int] = frozenset()
        self._timeout_code = _ERROR_CODE_FALLBACK["NVML_ERROR_TIMEOUT"]
        self.driver_version: str | None = None
        self.last_fast_duration_s: float | None = None
        self.last_slow_duration_s: float | None = None

    # -- state ------------------------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """True once NVML is initialised with at least one GPU."""
        return bool(self._gpus)

    @property
    def unavailable_reason(self) -> str | None:
        """Why there is no GPU data ("no GPU: ..."), or None while GPUs are being sampled or before a try."""
        return self._reason

    def capabilities(self) -> dict[int, dict[str, str]]:
        """Per GPU index: the calls it cannot answer and why, e.g. {0: {"fan_speed": "NotSupported"}}."""
        return {gpu.index: dict(gpu.unavailable) for gpu in self._gpus or ()}

    def close(self) -> None:
        """Free event sets and release NVML; a later sample initialises again."""
        with self._init_lock:
            self._release()
            self._next_init_at = None

    def __enter__(self) -> NvmlSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sampling ---------------------------------------------------------------------------------------

    def sample_fast(self) -> list[GpuSample]:
        """The cheap readings of every GPU; [] when there is no GPU. Makes no slow NVML call."""
        gpus = self._gpus
        if gpus is None:
            if not self._ensure_ready():
                return []
            gpus = self._gpus or []
        started = time.perf_counter()
        now = time.time()
        try:
            samples = [self._read_fast(gpu, now) for gpu in gpus]
        except _NvmlGone as gone:
            self._lose(str(gone))
            return []
        self.last_fast_duration_s = time.perf_counter() - started
        return samples

    def sample_slow(self, *, force: bool = False) -> list[GpuSlowSample]:
        """The costly readings (PCIe, energy, max clock, BAR1, ECC mode, Xids), re-read at most every TTL.

        Between reads it returns the cached list (see `sampled_at`). `force` re-reads now. Concurrent
        callers wait for one read instead of each paying ~45 ms per GPU.
        """
        if self._gpus is None and not self._ensure_ready():
            return []
        if not force and self._slow_fresh():
            return self._slow_cache or []
        with self._slow_lock:
            if not force and self._slow_fresh():
                return self._slow_cache or []
            gpus = self._gpus
            if gpus is None:
                return []
            started = time.perf_counter()
            try:
                samples = [self._read_slow(gpu) for gpu in gpus]
            except _NvmlGone as gone:
                self._lose(str(gone))
                return []
            self.last_slow_duration_s = time.perf_counter() - started
            self._slow_cache = samples
            self._slow_at = self._clock()
            return samples

    def _slow_fresh(self) -> bool:
        return self._slow_cache is not None and self._clock() - self._slow_at < self.slow_ttl_s

    # -- the query helper -------------------------------------------------------------------------------

    def _query(self, gpu: _Gpu, key: str, fn: Callable[..., Any] | None, *args: Any) -> Any:
        """Call fn(*args) for one GPU; NOT_AVAILABLE instead of raising for anything but a lost library.

        "Not supported / not found / no permission / function not found" are permanent for this driver:
        they go into the GPU's capability map, are logged once at debug level, and the call is never
        made again. Other NVML errors (GPU lost, timeout) are logged once per GPU and error as a warning
        and retried next tick. NotFound is treated as permanent: true for every call here, but not for
        nvmlDeviceGetProcessUtilization, where it means "no samples yet" (do not route that one here).
        """
        if key in gpu.unavailable:
            return NOT_AVAILABLE
        if fn is None:
            self._mark_unavailable(gpu, key, "FunctionNotFound (not in this pynvml)")
            return NOT_AVAILABLE
        try:
            return fn(*args)
        except self._mismatch_error:
            self._mark_unavailable(gpu, key, "FunctionNotFound (pynvml/driver version mismatch)")
            return NOT_AVAILABLE
        except self._nvml_error as exc:
            code = getattr(exc, "value", None)
            if code in self._capability_codes:
                self._mark_unavailable(gpu, key, _error_name(exc))
                return NOT_AVAILABLE
            if code in self._gone_codes:
                raise _NvmlGone(f"NVML stopped answering ({_error_name(exc)}: {exc})") from exc
            if (gpu.index, _error_name(exc)) not in self._warned:
                self._warned.add((gpu.index, _error_name(exc)))
                log.warning(
                    "GPU %d (%s): %s failed: %s: %s; reported as missing, retried each tick, logged once",
                    gpu.index, gpu.name, key, _error_name(exc), exc,
                )
            return NOT_AVAILABLE

    def _mark_unavailable(self, gpu: _Gpu, key: str, why: str) -> None:
        gpu.unavailable[key] = why
        log.debug("GPU %d (%s): %s is not available (%s); not asking again", gpu.index, gpu.name, key, why)

    # -- per-GPU reads ----------------------------------------------------------------------------------

    def _read_fast(self, gpu: _Gpu, now: float) -> GpuSample:
        handle = gpu.handle
        v = {key: self._query(gpu, key, fn, handle, *args) for key, fn, args in self._fast}
        reasons = v["clocks_event_reasons"]
        if reasons is NOT_AVAILABLE and "clocks_event_reasons" in gpu.unavailable:
            key, fn, args = self._throttle_fallback
            reasons = self._query(gpu, key, fn, handle, *args)
        mem = v["memory_info"]
        util = v["utilization_rates"]
        rows = v["remapped_rows"]
        power = v["power_usage"]
        limit = v["power_limit"]
        have_mem = mem is not NOT_AVAILABLE
        have_util = util is not NOT_AVAILABLE
        have_rows = rows is not NOT_AVAILABLE
        have_reasons = reasons is not NOT_AVAILABLE
        names = decode_throttle_reasons(reasons, self._throttle_table) if have_reasons else ()
        return GpuSample(
            index=gpu.index,
            uuid=gpu.uuid,
            name=gpu.name,
            sampled_at=now,
            utilization_gpu_pct=util.gpu if have_util else None,
            utilization_memory_pct=util.memory if have_util else None,
            memory_used_bytes=mem.used if have_mem else None,
            memory_total_bytes=mem.total if have_mem else None,
            temperature_c=_present(v["temperature_gpu"]),
            power_w=power / 1000.0 if power is not NOT_AVAILABLE else None,
            power_limit_w=limit / 1000.0 if limit is not NOT_AVAILABLE else None,
            sm_clock_mhz=_present(v["clock_sm"]),
            mem_clock_mhz=_present(v["clock_mem"]),
            fan_speed_pct=_present(v["fan_speed"]),
            throttle_reasons=reasons if have_reasons else None,
            throttle_reason_names=names,
            ecc_volatile_uncorrected=_present(v["ecc_volatile_uncorrected"]),
            ecc_volatile_corrected=_present(v["ecc_volatile_corrected"]),
            remapped_rows_correctable=rows[0] if have_rows else None,
            remapped_rows_uncorrectable=rows[1] if have_rows else None,
            remapped_rows_pending=bool(rows[2]) if have_rows else None,
            remapped_rows_failure=bool(rows[3]) if have_rows else None,
            process_memory_bytes=_process_memory(v["compute_processes"], v["graphics_processes"]),
        )

    def _read_slow(self, gpu: _Gpu) -> GpuSlowSample:
        started = time.perf_counter()
        now = time.time()
        handle = gpu.handle
        v = {key: self._query(gpu, key, fn, handle, *args) for key, fn, args in self._slow}
        xids = self._read_xids(gpu)
        bar1 = v["bar1_memory_info"]
        ecc = v["ecc_mode"]
        energy = v["total_energy"]
        tx, rx = v["pcie_tx"], v["pcie_rx"]
        have_bar1 = bar1 is not NOT_AVAILABLE
        have_ecc = ecc is not NOT_AVAILABLE
        return GpuSlowSample(
            index=gpu.index,
            uuid=gpu.uuid,
            sampled_at=now,
            read_duration_s=time.perf_counter() - started,
            pcie_tx_bytes_per_s=tx * 1024 if tx is not NOT_AVAILABLE else None,  # NVML reports KB/s
            pcie_rx_bytes_per_s=rx * 1024 if rx is not NOT_AVAILABLE else None,
            energy_total_j=energy / 1000.0 if energy is not NOT_AVAILABLE else None,  # NVML reports mJ
            max_sm_clock_mhz=_present(v["max_clock_sm"]),
            bar1_used_bytes=bar1.bar1Used if have_bar1 else None,
            bar1_total_bytes=bar1.bar1Total if have_bar1 else None,
            ecc_enabled=bool(ecc[0]) if have_ecc else None,
            ecc_enabled_pending=bool(ecc[1]) if have_ecc else None,
            xid_events=xids,
        )

    def _read_xids(self, gpu: _Gpu) -> tuple[int, ...] | None:
        """Xid codes queued since the last read, from a per-GPU event set (so each event names its GPU).

        Events before the set was registered are not seen: these are Xids since modeltop started watching.
        """
        nvml = self._nvml
        if XID_EVENTS_KEY in gpu.unavailable:
            return None
        if gpu.event_set is None:
            event_set = self._query(gpu, XID_EVENTS_KEY, getattr(nvml, "nvmlEventSetCreate", None))
            if event_set is NOT_AVAILABLE:
                return None
            registered = self._query(
                gpu,
                XID_EVENTS_KEY,
                getattr(nvml, "nvmlDeviceRegisterEvents", None),
                gpu.handle,
                resolve_constant(nvml, "nvmlEventTypeXidCriticalError"),
                event_set,
            )
            if registered is NOT_AVAILABLE:
                _free_quietly(nvml, event_set)
                return None
            gpu.event_set = event_set
        wait = getattr(nvml, "nvmlEventSetWait", None)
        timeout_code = self._timeout_code
        nvml_error = self._nvml_error

        def next_event(event_set: Any) -> Any:
            try:
                return wait(event_set, 0)  # 0 ms: never block the tick
            except nvml_error as exc:
                if getattr(exc, "value", None) == timeout_code:
                    return None  # the queue is empty
                raise

        xids: list[int] = []
        for _ in range(_MAX_XIDS_PER_READ):
            event = self._query(gpu, XID_EVENTS_KEY, next_event if wait else None, gpu.event_set)
            if event is NOT_AVAILABLE:
                return tuple(xids) if xids else None
            if event is None:
                break
            xids.append(int(event.eventData))
        return tuple(xids)

    # -- init and loss ----------------------------------------------------------------------------------

    def _ensure_ready(self) -> bool:
        """Initialise NVML unless it failed less than retry_init_s ago; True when GPUs are ready."""
        if self._gpus is not None:
            return True
        if self._next_init_at is not None and self._clock() < self._next_init_at:
            return False
        with self._init_lock:
            if self._gpus is not None:
                return True
            if self._next_init_at is not None and self._clock() < self._next_init_at:
                return False
            reason = self._init()
            if reason is None:
                return True
            self._reason = f"no GPU: {reason}"
            self._next_init_at = self._clock() + self.retry_init_s
            if self._reason != self._logged_reason:
                self._logged_reason = self._reason
                log.info(
                    "%s; GPU metrics are off, retrying every %.0f s", self._reason, self.retry_init_s
                )
            return False

    def _init(self) -> str | None:
        """Load pynvml and the driver and list the GPUs; the reason there is no GPU, or None on success."""
        nvml = self._module
        if nvml is None:
            try:
                nvml = importlib.import_module("pynvml")
            except ImportError as exc:
                return f"nvidia-ml-py is not installed ({exc})"
        nvml_error = getattr(nvml, "NVMLError", Exception)
        try:
            nvml.nvmlInit()
        except nvml_error as exc:
            return f"NVML did not start ({_error_name(exc)}: {exc})"
        try:
            count = nvml.nvmlDeviceGetCount()
            gpus = [gpu for index in range(count) if (gpu := self._open_gpu(nvml, index)) is not None]
        except nvml_error as exc:
            _shutdown_quietly(nvml)
            return f"NVML could not list GPUs ({_error_name(exc)}: {exc})"
        if not gpus:
            _shutdown_quietly(nvml)
            return "NVML found no GPU" if count == 0 else f"none of the {count} GPUs could be opened"
        self._bind(nvml)
        try:
            self.driver_version = _text(nvml.nvmlSystemGetDriverVersion())
        except nvml_error:
            self.driver_version = None
        self._slow_cache = None
        self._gpus = gpus
        self._reason = None
        self._logged_reason = None
        self._next_init_at = None
        log.info(
            "NVML ready: driver %s, %d GPU(s): %s",
            self.driver_version or "unknown",
            len(gpus),
            ", ".join(f"{g.index}:{g.name}" for g in gpus),
        )
        return None

    def _open_gpu(self, nvml: Any, index: int) -> _Gpu | None:
        """A handle with its static name and uuid, or None (logged) when this one GPU cannot be opened."""
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            uuid = _text(nvml.nvmlDeviceGetUUID(handle))
            name = _text(nvml.nvmlDeviceGetName(handle))
        except getattr(nvml, "NVMLError", Exception) as exc:
            log.warning("GPU %d cannot be opened (%s: %s); skipping it", index, _error_name(exc), exc)
            return None
        return _Gpu(index=index, handle=handle, uuid=uuid, name=name, unavailable={})

    def _bind(self, nvml: Any) -> None:
        """Resolve functions, constants and error classes once, so a tick is only calls and dict lookups."""
        self._nvml = nvml
        self._fast = tuple((c.key, *c.bind(nvml)) for c in FAST_CALLS)
        self._slow = tuple((c.key, *c.bind(nvml)) for c in SLOW_CALLS)
        self._throttle_fallback = (THROTTLE_REASONS_FALLBACK.key, *THROTTLE_REASONS_FALLBACK.bind(nvml))
        self._throttle_table = throttle_reason_table(nvml)
        self._nvml_error = getattr(nvml, "NVMLError", Exception)
        mismatch = getattr(nvml, "NVMLLibraryMismatchError", None)
        self._mismatch_error = (mismatch,) if isinstance(mismatch, type) else ()

        def code(name: str) -> int:
            value = getattr(nvml, name, None)
            return _ERROR_CODE_FALLBACK[name] if value is None else int(value)

        self._capability_codes = frozenset(code(n) for n in _CAPABILITY_ERRORS)
        self._gone_codes = frozenset(code(n) for n in _LIBRARY_GONE_ERRORS)
        self._timeout_code = code("NVML_ERROR_TIMEOUT")

    def _lose(self, why: str) -> None:
        """NVML went away mid-run: stop sampling, say so once, and re-init after retry_init_s."""
        with self._init_lock:
            if self._gpus is None:
                return
            self._release()
            hint = " (after a driver upgrade, restart modeltop)" if "Mismatch" in why else ""
            self._reason = f"no GPU: {why}{hint}"
            self._next_init_at = self._clock() + self.retry_init_s
            if self._reason != self._logged_reason:
                self._logged_reason = self._reason
                log.warning("%s; GPU metrics paused, retrying every %.0f s", self._reason, self.retry_init_s)

    def _release(self) -> None:
        gpus, self._gpus = self._gpus, None
        self._slow_cache = None
        if gpus is None:
            return
        for gpu in gpus:
            if gpu.event_set is not None:
                _free_quietly(self._nvml, gpu.event_set)
                gpu.event_set = None
        _shutdown_quietly(self._nvml)


def _process_memory(compute: Any, graphics: Any) -> dict[int, int] | None:
    """pid -> bytes from both process lists; a pid in both is one process, so take the larger, not the sum.

    usedGpuMemory is None where NVML cannot tell (Windows WDDM, some MIG setups); such pids are left out.
    """
    if compute is NOT_AVAILABLE and graphics is NOT_AVAILABLE:
        return None
    memory: dict[int, int] = {}
    for processes in (compute, graphics):
        if processes is NOT_AVAILABLE:
            continue
        for process in processes:
            used = process.usedGpuMemory
            if used is not None and used >= memory.get(process.pid, 0):
                memory[process.pid] = used
    return memory


def _text(value: str | bytes) -> str:
    """pynvml returns str in current versions and bytes in old ones."""
    return value.decode() if isinstance(value, bytes) else value


def _shutdown_quietly(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:  # releasing a library that is already gone must not raise
        pass


def _free_quietly(nvml: Any, event_set: Any) -> None:
    try:
        nvml.nvmlEventSetFree(event_set)
    except Exception:  # see _shutdown_quietly
        pass
