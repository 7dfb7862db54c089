"""The banner shown while the daemon cannot be reached; the data under it is then stale."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static


class DaemonBanner(Static):
    """Hidden while the daemon answers; otherwise says what is wrong, that we keep retrying, and how old
    the data on screen is, so nobody acts on numbers they think are live."""

    # Widgets have no CSS_PATH; the style still lives in a .tcss file beside the widget.
    DEFAULT_CSS = (Path(__file__).parent / "daemon_banner.tcss").read_text()

    def show_down(self, problem: str, retry_s: float, last_ok: str | None) -> None:
        """Show the banner; `problem` is e.g. "daemon unreachable at /run/modeltop.sock"."""
        stale = f"last data from {last_ok}" if last_ok else "no data yet"
        self.update(f"{problem} — retrying every {retry_s:g}s; {stale}")
        self.add_class("-down")

    def show_up(self) -> None:
        """Hide the banner: the daemon answered again."""
        self.remove_class("-down")

    @property
    def is_down(self) -> bool:
        return self.has_class("-down")
