"""The Textual application and the entry point the CLI calls (`modeltop tui`)."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from tui.screens.overview import OverviewScreen


class ModeltopApp(App):
    """A client of the daemon: works at 80x24, keyboard only, and says clearly when the daemon is down."""

    CSS_PATH = "app.tcss"
    TITLE = "modeltop"

    def __init__(self, socket_path: Path, refresh_s: float = 2.0) -> None:
        super().__init__()
        self.socket_path = Path(socket_path)
        self.refresh_s = refresh_s

    def on_mount(self) -> None:
        self.push_screen(OverviewScreen(self.socket_path, self.refresh_s))


def run(socket_path: Path, refresh_s: float = 2.0) -> None:
    """Run the TUI against the daemon on `socket_path`; mouse off, since it is used over SSH."""
    ModeltopApp(socket_path, refresh_s).run(mouse=False)
