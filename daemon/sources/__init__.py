"""Samplers that read the host and its GPUs for the daemon's resource checks (psutil, NVML)."""
