"""systemd's sd_notify protocol: one datagram per message to $NOTIFY_SOCKET (a no-op when unset).

Small enough that a dependency would cost more than it saves; see sd_notify(3).
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        if self.address.startswith("@"):  # abstract namespace socket
            self.address = "\0" + self.address[1:]

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, **fields: str | int) -> bool:
        """send(READY=1, STATUS="...") -> whether a datagram went out."""
        if not self.enabled:
            return False
        message = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            try:
                sock.sendto(message, self.address)
            except OSError:
                return False
        return True


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec (from $WATCHDOG_USEC), when the watchdog is on for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec) / 2e6, 0.05)
    except ValueError:
        return None
