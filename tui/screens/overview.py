"""The overview: one row per model, one column per check, and why each check says what it says.

Data comes from the daemon in a thread worker that posts a message back; widgets are only touched on
the event loop. The next refresh is armed when the previous one finishes, so refreshes never overlap
even on a slow SSH link or when the daemon is slow to answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Static

from daemon.client import ApiError, Client, DaemonUnreachable
from tui.widgets.daemon_banner import DaemonBanner
from tui.widgets.status_cell import MISSING, status_text

HOST_ROW = "@host"


def age_text(iso: str | None, now: datetime) -> str:
    if not iso:
        return "—"
    then = datetime.fromisoformat(iso.rstrip("Z")).replace(tzinfo=UTC)
    seconds = max(0.0, (now - then).total_seconds())
    if seconds < 60:
        return f"{seconds:.0f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


class OverviewScreen(Screen):
    BINDINGS = [
        Binding("r", "refresh_now", "Refresh"),
        Binding("q", "app.quit", "Quit"),
    ]

    @dataclass
    class Fetched(Message):
        status: dict[str, Any]

    @dataclass
    class Failed(Message):
        error: str

    def __init__(self, socket_path: Path, refresh_s: float) -> None:
        super().__init__()
        self.socket_path = socket_path
        self.refresh_s = refresh_s
        self.client = Client(socket_path, timeout=max(3.0, refresh_s))
        self.models: dict[str, dict[str, Any]] = {}
        self.check_names: list[str] = []
        self.last_ok: datetime | None = None
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield DaemonBanner(id="banner")
        yield DataTable(id="models", cursor_type="row", zebra_stripes=True)
        yield Static("connecting to the daemon…", id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "modeltop"
        self.sub_title = str(self.socket_path)
        self.action_refresh_now()

    def on_unmount(self) -> None:
        self.client.close()

    # -- refresh cycle ---------------------------------------------------------------------------

    def action_refresh_now(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.fetch()

    @work(thread=True, exclusive=True, group="refresh")
    def fetch(self) -> None:
        try:
            self.post_message(self.Fetched(self.client.status()))
        except (DaemonUnreachable, ApiError) as exc:
            self.post_message(self.Failed(str(exc)))

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.refresh_s, self.fetch)

    def on_overview_screen_fetched(self, message: Fetched) -> None:
        self.last_ok = datetime.now(UTC)
        self.query_one(DaemonBanner).show_up()
        self.query_one(DataTable).remove_class("-stale")
        self._show(message.status)
        self._arm()

    def on_overview_screen_failed(self, message: Failed) -> None:
        last = self.last_ok.astimezone().strftime("%H:%M:%S") if self.last_ok else None
        self.query_one(DaemonBanner).show_down(str(self.socket_path), self.refresh_s, last)
        self.query_one(DataTable).add_class("-stale")
        if not self.models:
            self.query_one("#detail", Static).update(message.error)
        self._refresh_ages()
        self._arm()

    def _refresh_ages(self) -> None:
        """While the daemon is down the data ages: say so in the Updated column."""
        table = self.query_one(DataTable)
        now = datetime.now(UTC)
        for name, model in self.models.items():
            table.update_cell(name, "updated", age_text(model["last_update"], now))

    # -- rendering -------------------------------------------------------------------------------

    def _show(self, status: dict[str, Any]) -> None:
        models = sorted(status["models"], key=lambda m: (m["name"] == HOST_ROW, m["name"]))
        self.models = {m["name"]: m for m in models}
        checks = sorted({c["check"] for m in models for c in m["checks"]})
        table = self.query_one(DataTable)
        now = datetime.now(UTC)
        if checks != self.check_names:
            self._rebuild_columns(table, checks)
        for name in list(table.rows):
            if name.value not in self.models:
                table.remove_row(name)
        for model in models:
            cells = self._cells(model, now)
            if model["name"] in {key.value for key in table.rows}:
                for column, value in zip(self._column_keys(), cells, strict=True):
                    table.update_cell(model["name"], column, value)
            else:
                table.add_row(*cells, key=model["name"])
        self._show_detail()

    def _column_keys(self) -> list[str]:
        return ["model", *self.check_names, "updated", "alerts"]

    def _rebuild_columns(self, table: DataTable, checks: list[str]) -> None:
        highlighted = self._highlighted()
        table.clear(columns=True)
        self.check_names = checks
        table.add_column("Model", key="model")
        for check in checks:
            table.add_column(check, key=check)
        table.add_column("Updated", key="updated")
        table.add_column("Alerts", key="alerts")
        if highlighted:
            self.call_after_refresh(self._restore_cursor, highlighted)

    def _restore_cursor(self, name: str) -> None:
        table = self.query_one(DataTable)
        if name in {key.value for key in table.rows}:
            table.move_cursor(row=table.get_row_index(name))

    def _cells(self, model: dict[str, Any], now: datetime) -> list[Any]:
        by_check = {c["check"]: c["status"] for c in model["checks"]}
        alerts = model["open_alerts"]
        return [
            Text(model["name"], style="bold"),
            *[status_text(by_check[c]) if c in by_check else MISSING for c in self.check_names],
            age_text(model["last_update"], now),
            Text(str(alerts), style="bold red" if alerts else "dim"),
        ]

    def _highlighted(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - an empty or rebuilding table has no highlighted row
            return None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        name = self._highlighted()
        detail = self.query_one("#detail", Static)
        model = self.models.get(name or "")
        if model is None:
            detail.update("no models configured" if not self.models else "")
            return
        lines = Text()
        lines.append(f"{model['name']}", style="bold")
        lines.append(f"  ·  {model['open_alerts']} open alert(s)\n", style="dim")
        for check in model["checks"]:
            lines.append_text(status_text(check["status"]))
            lines.append(f"  {check['check']}: {check['reason']}\n")
        detail.update(lines)
