"""A pynvml stand-in that answers from a real H200 capture (tests/fixtures/nvml/h200-probe.json).

`FakeNvml` returns the recorded values, raises the real pynvml error subclasses for the calls the capture
says were NotSupported/NotFound, counts calls per function, and adds up each call's recorded median cost
(`recorded_us`) so tests can check what a tick would cost on the H200 without timing anything. With
`sleep=True` it also spends that time (busy-waiting under 2 ms, where time.sleep is too coarse), so a
benchmark reproduces the 21 ms PCIe and 3 ms energy calls. `at(i)` replays one point of the capture's
timeline (a load ramp: processes appear, throttle reasons change). `MissingDriverNvml` is a host where
nvmlInit fails. A function the capture has no answer for raises NotCapturedError instead of inventing one.

Where the capture lacks a value the fake borrows it, and says where from:
- volatile corrected and aggregate uncorrected ECC counts: 0, from h200-nvidia-smi-q.txt, at the cost of
  the recorded ECC calls;
- device handles, driver/NVML/CUDA version queries and Xid events: no recorded cost (0 us); the event set
  is empty unless a test calls `inject_xid`, like an idle GPU.
"""

from __future__ import annotations

import copy
import json
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "nvml" / "h200-probe.json"
MIB = 1024 * 1024
_NO_INSTANCE = 0xFFFFFFFF  # what NVML puts in gpuInstanceId/computeInstanceId without MIG

# capture key of an error -> the pynvml function that raised it
_ERROR_FUNCTIONS = {
    "fan_speed": "nvmlDeviceGetFanSpeed",
    "retired_pages_dbe": "nvmlDeviceGetRetiredPages",
    "process_utilization": "nvmlDeviceGetProcessUtilization",
}


class NotCapturedError(AssertionError):
    """The code under test asked for something h200-probe.json has no answer for."""


def error_code(class_name: str) -> int:
    """The NVML_ERROR_* code whose pynvml exception class is called class_name (e.g. NVMLError_NotFound)."""
    for name in dir(pynvml):
        if name.startswith("NVML_ERROR_"):
            code = getattr(pynvml, name)
            try:
                if pynvml.nvmlExceptionClass(code).__name__ == class_name:
                    return code
            except ValueError:
                continue
    raise KeyError(class_name)


class FakeHandle:
    """A device handle; the fake checks that device calls get one of its own."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"FakeHandle({self.index})"


class _PynvmlPassthrough:
    """Constants, error classes and structs come from the real pynvml; its functions never do."""

    _missing: frozenset[str] = frozenset()

    def __getattr__(self, name: str) -> Any:
        if name in self._missing or name.startswith("_"):
            raise AttributeError(name)
        value = getattr(pynvml, name)  # AttributeError for names pynvml does not have either
        if name.startswith("nvml") and callable(value) and not isinstance(value, type):
            raise NotCapturedError(f"{name} is not answered by the fake (not in the H200 capture)")
        return value


class FakeNvml(_PynvmlPassthrough):
    """pynvml as the recorded H200 answered it; see the module docstring."""

    def __init__(
        self,
        probe_path: Path = FIXTURE,
        *,
        sleep: bool = False,
        device_count: int | None = None,
        timeline_index: int | None = None,
        errors: Mapping[str, int] | None = None,
        missing: Iterable[str] = (),
    ) -> None:
        """errors: pynvml function name -> NVML error code to raise (added to the capture's own);
        missing: function names to hide, as an older pynvml would; device_count: clone the GPU."""
        probe = json.loads(Path(probe_path).read_text())
        self.probe = probe
        self.recorded: dict[str, Any] = probe["calls"]
        self.timeline: list[dict[str, Any]] = probe["timeline"]
        self.sleep = sleep
        self.device_count = probe["device_count"] if device_count is None else device_count
        self.timeline_index = timeline_index
        self.errors: dict[str, int] = {
            _ERROR_FUNCTIONS[key]: error_code(text.split(":", 1)[0]) for key, text in probe["errors"].items()
        }
        self.errors.update(errors or {})
        self._missing = frozenset(missing)
        if self._missing:  # hide even real methods; a subclass so that the usual fake pays nothing for it
            self.__class__ = _FakeNvmlWithout
        self.calls: Counter[str] = Counter()
        self.recorded_us = 0.0
        self.initialised = 0
        self._xids: dict[int, deque[int]] = {}

    # -- test controls ----------------------------------------------------------------------------------

    def at(self, timeline_index: int | None) -> FakeNvml:
        """Answer as the GPU was at this point of the capture's timeline (None: the `calls` snapshot)."""
        self.timeline_index = timeline_index
        return self

    def reset_counts(self) -> None:
        self.calls.clear()
        self.recorded_us = 0.0

    def inject_xid(self, index: int, xid: int) -> None:
        """Queue an Xid event for GPU `index`, delivered to event sets registered for it."""
        self._xids.setdefault(index, deque()).append(xid)

    # -- plumbing -------------------------------------------------------------------------------------

    def _spend(self, function: str, key: str | None) -> None:
        """Count the call, add its recorded cost, maybe spend it, and raise its recorded error."""
        self.calls[function] += 1
        cost_us = float(self.recorded[key].get("median_us", 0.0)) if key else 0.0
        self.recorded_us += cost_us
        if self.sleep and cost_us:
            _spend_time(cost_us / 1e6)
        if not self.initialised:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        if function in self.errors:
            raise pynvml.NVMLError(self.errors[function])

    def _device(self, function: str, handle: Any, key: str | None) -> Any:
        if not isinstance(handle, FakeHandle) or not 0 <= handle.index < self.device_count:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        self._spend(function, key)
        if key is None:
            return None
        value = self.recorded[key]["value"]
        return copy.deepcopy(value) if isinstance(value, dict | list) else value

    def _frame(self) -> dict[str, Any] | None:
        return None if self.timeline_index is None else self.timeline[self.timeline_index]

    # -- library --------------------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.sleep:
            _spend_time(self.probe["init_ms"] / 1e3)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.calls["nvmlShutdown"] += 1
        if not self.initialised:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._spend("nvmlSystemGetDriverVersion", None)
        return self.probe["driver"]

    def nvmlSystemGetNVMLVersion(self) -> str:
        self._spend("nvmlSystemGetNVMLVersion", None)
        return self.probe["nvml_version"]

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._spend("nvmlSystemGetCudaDriverVersion", None)
        return self.probe["cuda_driver_version"]

    def nvmlDeviceGetCount(self) -> int:
        self._spend("nvmlDeviceGetCount", None)
        return self.device_count

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._spend("nvmlDeviceGetHandleByIndex", None)
        if not 0 <= index < self.device_count:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return FakeHandle(index)

    # -- static device facts --------------------------------------------------------------------------

    def nvmlDeviceGetName(self, handle: Any) -> str:
        return self._device("nvmlDeviceGetName", handle, "name")

    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        uuid = self._device("nvmlDeviceGetUUID", handle, "uuid")
        # clones get their own uuid; GPU 0 keeps the recorded one
        return uuid if handle.index == 0 else f"{uuid[:-4]}{handle.index:04d}"

    def nvmlDeviceGetSerial(self, handle: Any) -> str:
        return self._device("nvmlDeviceGetSerial", handle, "serial")

    def nvmlDeviceGetPciInfo(self, handle: Any) -> SimpleNamespace:
        return SimpleNamespace(**self._device("nvmlDeviceGetPciInfo", handle, "pci_info"))

    # -- fast readings --------------------------------------------------------------------------------

    def nvmlDeviceGetMemoryInfo(self, handle: Any, version: Any = None) -> SimpleNamespace:
        if version:
            raise NotCapturedError("the capture holds nvmlDeviceGetMemoryInfo v1 only")
        memory = self._device("nvmlDeviceGetMemoryInfo", handle, "memory_info")
        if (frame := self._frame()) is not None:
            memory["used"] = round(frame["mem_used_mib"] * MIB)
            memory["free"] = memory["total"] - memory["used"]
        return SimpleNamespace(**memory)

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> SimpleNamespace:
        util = self._device("nvmlDeviceGetUtilizationRates", handle, "utilization_rates")
        if (frame := self._frame()) is not None:
            util = {"gpu": frame["gpu_util"], "memory": frame["mem_util"]}
        return SimpleNamespace(**util)

    def nvmlDeviceGetEncoderUtilization(self, handle: Any) -> list[int]:
        return self._device("nvmlDeviceGetEncoderUtilization", handle, "encoder_utilization")

    def nvmlDeviceGetDecoderUtilization(self, handle: Any) -> list[int]:
        return self._device("nvmlDeviceGetDecoderUtilization", handle, "decoder_utilization")

    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int:
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise NotCapturedError(f"temperature sensor {sensor}")
        value = self._device("nvmlDeviceGetTemperature", handle, "temperature_gpu")
        frame = self._frame()
        return value if frame is None else frame["temp_c"]

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        value = self._device("nvmlDeviceGetPowerUsage", handle, "power_usage_mw")
        frame = self._frame()
        return value if frame is None else round(frame["power_w"] * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> int:
        return self._device("nvmlDeviceGetEnforcedPowerLimit", handle, "power_limit_mw")

    def nvmlDeviceGetPowerManagementLimit(self, handle: Any) -> int:
        return self._device("nvmlDeviceGetPowerManagementLimit", handle, "power_limit_mw")

    def nvmlDeviceGetClockInfo(self, handle: Any, clock_type: int) -> int:
        keys = {pynvml.NVML_CLOCK_SM: "clock_sm_mhz", pynvml.NVML_CLOCK_MEM: "clock_mem_mhz"}
        if clock_type not in keys:
            raise NotCapturedError(f"clock type {clock_type}")
        value = self._device("nvmlDeviceGetClockInfo", handle, keys[clock_type])
        frame = self._frame()
        return frame["sm_mhz"] if frame is not None and clock_type == pynvml.NVML_CLOCK_SM else value

    def nvmlDeviceGetPerformanceState(self, handle: Any) -> int:
        return self._device("nvmlDeviceGetPerformanceState", handle, "performance_state")

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any) -> int:
        return self._reasons("nvmlDeviceGetCurrentClocksEventReasons", handle)

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: Any) -> int:
        return self._reasons("nvmlDeviceGetCurrentClocksThrottleReasons", handle)

    def _reasons(self, function: str, handle: Any) -> int:
        value = self._device(function, handle, "throttle_reasons")
        frame = self._frame()
        return value if frame is None else frame["throttle"]

    def nvmlDeviceGetTotalEccErrors(self, handle: Any, error_type: int, counter_type: int) -> int:
        uncorrected = error_type == pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
        volatile = counter_type == pynvml.NVML_VOLATILE_ECC
        # Recorded: volatile uncorrected and aggregate corrected; the other two are 0 in nvidia-smi -q.
        key = "ecc_volatile_uncorrected" if uncorrected else "ecc_aggregate_corrected"
        value = self._device("nvmlDeviceGetTotalEccErrors", handle, key)
        return value if volatile == uncorrected else 0

    def nvmlDeviceGetRemappedRows(self, handle: Any) -> tuple[int, int, int, int]:
        return tuple(self._device("nvmlDeviceGetRemappedRows", handle, "remapped_rows"))

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[SimpleNamespace]:
        recorded = self._device("nvmlDeviceGetComputeRunningProcesses", handle, "compute_processes")
        frame = self._frame()
        rows = recorded if frame is None else [(p["pid"], round(p["used_mib"] * MIB)) for p in frame["procs"]]
        return [_process(pid, used) for pid, used in rows]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: Any) -> list[SimpleNamespace]:
        recorded = self._device("nvmlDeviceGetGraphicsRunningProcesses", handle, "graphics_processes")
        return [_process(pid, used) for pid, used in recorded]

    def nvmlDeviceGetComputeMode(self, handle: Any) -> int:
        return self._device("nvmlDeviceGetComputeMode", handle, "compute_mode")

    def nvmlDeviceGetPersistenceMode(self, handle: Any) -> int:
        return self._device("nvmlDeviceGetPersistenceMode", handle, "persistence_mode")

    # -- slow readings --------------------------------------------------------------------------------

    def nvmlDeviceGetPcieThroughput(self, handle: Any, counter: int) -> int:
        keys = {pynvml.NVML_PCIE_UTIL_TX_BYTES: "pcie_tx_kbps", pynvml.NVML_PCIE_UTIL_RX_BYTES: "pcie_rx_kbps"}
        if counter not in keys:
            raise NotCapturedError(f"PCIe counter {counter}")
        return self._device("nvmlDeviceGetPcieThroughput", handle, keys[counter])

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        return self._device("nvmlDeviceGetTotalEnergyConsumption", handle, "total_energy_mj")

    def nvmlDeviceGetMaxClockInfo(self, handle: Any, clock_type: int) -> int:
        if clock_type != pynvml.NVML_CLOCK_SM:
            raise NotCapturedError(f"max clock type {clock_type}")
        return self._device("nvmlDeviceGetMaxClockInfo", handle, "max_clock_sm_mhz")

    def nvmlDeviceGetBAR1MemoryInfo(self, handle: Any) -> SimpleNamespace:
        return SimpleNamespace(**self._device("nvmlDeviceGetBAR1MemoryInfo", handle, "bar1_memory_info"))

    def nvmlDeviceGetEccMode(self, handle: Any) -> list[int]:
        return self._device("nvmlDeviceGetEccMode", handle, "ecc_mode")

    def nvmlDeviceGetMigMode(self, handle: Any) -> list[int]:
        return self._device("nvmlDeviceGetMigMode", handle, "mig_mode")

    # -- what the capture says failed -----------------------------------------------------------------

    def nvmlDeviceGetFanSpeed(self, handle: Any) -> int:
        self._device("nvmlDeviceGetFanSpeed", handle, None)
        raise NotCapturedError("fan speed answered, but the capture has it only as an error")

    def nvmlDeviceGetRetiredPages(self, handle: Any, source: int) -> list[int]:
        self._device("nvmlDeviceGetRetiredPages", handle, None)
        raise NotCapturedError("retired pages answered, but the capture has them only as an error")

    def nvmlDeviceGetProcessUtilization(self, handle: Any, timestamp: int) -> list[Any]:
        self._device("nvmlDeviceGetProcessUtilization", handle, None)
        raise NotCapturedError("process utilization answered, but the capture has it only as an error")

    # -- Xid events (not in the capture: an idle GPU unless inject_xid is used) -----------------------

    def nvmlEventSetCreate(self) -> SimpleNamespace:
        self._spend("nvmlEventSetCreate", None)
        return SimpleNamespace(indexes=set(), freed=False)

    def nvmlDeviceRegisterEvents(self, handle: Any, event_types: int, event_set: SimpleNamespace) -> None:
        self._device("nvmlDeviceRegisterEvents", handle, None)
        if event_types & ~pynvml.nvmlEventTypeXidCriticalError:
            raise NotCapturedError(f"event types {event_types:#x}")
        event_set.indexes.add(handle.index)

    def nvmlEventSetWait(self, event_set: SimpleNamespace, timeout_ms: int) -> SimpleNamespace:
        self._spend("nvmlEventSetWait", None)
        for index in sorted(event_set.indexes):
            queue = self._xids.get(index)
            if queue:
                return SimpleNamespace(
                    device=FakeHandle(index),
                    eventType=pynvml.nvmlEventTypeXidCriticalError,
                    eventData=queue.popleft(),
                    gpuInstanceId=_NO_INSTANCE,
                    computeInstanceId=_NO_INSTANCE,
                )
        raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT)

    def nvmlEventSetFree(self, event_set: SimpleNamespace) -> None:
        self._spend("nvmlEventSetFree", None)
        event_set.freed = True


class _FakeNvmlWithout(FakeNvml):
    """FakeNvml with some functions hidden (`missing=`), as an older pynvml or driver would lack them."""

    def __getattribute__(self, name: str) -> Any:
        if name in object.__getattribute__(self, "_missing"):
            raise AttributeError(name)
        return object.__getattribute__(self, name)


class MissingDriverNvml(_PynvmlPassthrough):
    """A host with pynvml but no usable driver: nvmlInit raises `code` (LibraryNotFound by default)."""

    def __init__(self, code: int = pynvml.NVML_ERROR_LIBRARY_NOT_FOUND) -> None:
        self.code = code
        self.calls: Counter[str] = Counter()

    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        raise pynvml.NVMLError(self.code)

    def nvmlShutdown(self) -> None:
        self.calls["nvmlShutdown"] += 1
        raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)


def _process(pid: int, used: int | None) -> SimpleNamespace:
    return SimpleNamespace(
        pid=pid, usedGpuMemory=used, gpuInstanceId=_NO_INSTANCE, computeInstanceId=_NO_INSTANCE
    )


def _spend_time(seconds: float) -> None:
    """Sleep for long waits; busy-wait short ones, which time.sleep would stretch to ~50 us or more."""
    if seconds >= 2e-3:
        time.sleep(seconds)
        return
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
