"""What providers derive from a model's reference file (a drift profile, range statistics, baseline
outcomes), built once and reused until the file or what the value depends on changes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from daemon.config import ModelConfig

T = TypeVar("T")


class ReferenceCache(Generic[T]):
    """One value per model, rebuilt when the reference file's identity (inode, size, mtime) or `depends`
    changes. Building happens outside the lock: two threads may build at once, the last one is kept."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[Hashable, T]] = {}
        self._lock = threading.Lock()

    def get(self, model: ModelConfig, depends: Hashable, build: Callable[[], T]) -> T:
        assert model.reference is not None
        try:
            st = model.reference.stat()
        except FileNotFoundError:
            raise FileNotFoundError(f"reference file {model.reference} does not exist") from None
        key = (str(model.reference), st.st_ino, st.st_size, st.st_mtime_ns, depends)
        with self._lock:
            cached = self._values.get(model.name)
            if cached is not None and cached[0] == key:
                return cached[1]
        value = build()
        with self._lock:
            self._values[model.name] = (key, value)
        return value
