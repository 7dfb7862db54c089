"""The banner shown while the daemon cannot be reached; the data under it is then stale."""

from __future__ import annotations

from textual.widgets import Static


class DaemonBanner(Static):
    """Hidden while the daemon answers; says what is wrong and that we keep retrying otherwise."""

    DEFAULT_CSS = """
    DaemonBanner {
        display: none;
        background: $error;
        color: $text;
        text-style: bold;
        padding: 0 1;
        height: auto;
    }
    DaemonBanner.-down {
        display: block;
    }
    """

    def show_down(self, socket: str, retry_s: float, last_ok: str | None) -> None:
        stale = f"; showing data from {last_ok}" if last_ok else "; no data yet"
        self.update(f"daemon unreachable at {socket} — retrying every {retry_s:g}s{stale}")
        self.add_class("-down")

    def show_up(self) -> None:
        self.remove_class("-down")
