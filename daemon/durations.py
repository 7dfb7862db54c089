"""Human durations in config ("90s", "5m", "1h30m", "2d") to seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")


def parse_duration(value: object) -> float:
    """Seconds from a number (taken as seconds) or a string of number+unit parts; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text and _WHOLE.match(text):
            return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    raise ValueError(f"not a duration: {value!r}")


def format_duration(seconds: float) -> str:
    """The inverse for messages: compact, one or two units."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            whole, rest = divmod(seconds, size)
            return f"{whole:.0f}{unit}" + (format_duration(rest) if rest >= 1 and unit != "m" else "")
    return f"{seconds:.0f}s"
