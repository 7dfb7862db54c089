"""The overview: one row per model, one column per check, and why each check says what it says.

Data comes from the daemon in a thread worker that posts a message back; widgets are only touched on
the event loop. The next refresh is armed when the previous one finishes (dolphie's cycle), so
refreshes never overlap even on a slow SSH link or when the daemon is slow to answer.
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
from textual.widgets.data_table import CellDoesNotExist

from daemon.client import ApiError, Client, DaemonUnreachable
from tui.widgets.daemon_banner import DaemonBanner
from tui.widgets.status_cell import MISSING, STATUS_WIDTH, status_text

HOST_ROW = "@host"
UPDATED_WIDTH = len("59.9h")  # compact: the column is headed "Age"
# Column headings for checks whose names are long: at 80 columns every character of a heading is a column of
# another check. The detail panel underneath names each check in full.
COLUMN_TITLES = {"prediction_drift": "outputs", "label_drift": "prior", "multivariate_drift": "multivar",
                 "data_quality": "quality", "performance": "perform"}


def age_text(iso: str | None, now: datetime) -> str:
    """How long ago `iso` was, against the local clock: "3s", "6m", "1.5h" (80 columns are precious)."""
    if not iso:
        return "—"
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return "?"
    if then.tzinfo is None:  # the daemon writes UTC
        then = then.replace(tzinfo=UTC)
    seconds = max(0.0, (now - then).total_seconds())
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def model_order(model: dict[str, Any]) -> tuple[bool, str]:
    """Models by name, the host-wide pseudo model last, so the rows people scan first are models."""
    return (model["name"] == HOST_ROW, model["name"])


class OverviewScreen(Screen):
    """Models x checks at a glance; the reasons of the highlighted model underneath."""

    CSS_PATH = "overview.tcss"
    BINDINGS = [
        Binding("r", "refresh_now", "Refresh"),
        Binding("q", "app.quit", "Quit"),
    ]

    @dataclass
    class Fetched(Message):
        """The worker got /v1/status."""

        status: dict[str, Any]

    @dataclass
    class Failed(Message):
        """The worker got no status; `unreachable` tells a down daemon from one that answered badly."""

        error: str
        unreachable: bool

    def __init__(self, socket_path: Path, refresh_s: float) -> None:
        super().__init__()
        self.socket_path = socket_path
        self.refresh_s = refresh_s
        # A timeout near the refresh period: a hung daemon shows up as "unreachable" quickly.
        self.client = Client(socket_path, timeout=max(3.0, refresh_s))
        self.models: dict[str, dict[str, Any]] = {}
        self.check_names: list[str] = []
        self.last_ok: datetime | None = None
        self._timer: Timer | None = None
        self._fetching = False
        self._again = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield DaemonBanner(id="banner")
        # the model name stays put while the check columns scroll sideways (←/→, End) at 80 columns
        yield DataTable(id="models", cursor_type="row", zebra_stripes=True, fixed_columns=1)
        yield Static("connecting to the daemon…", id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "modeltop"
        self.sub_title = str(self.socket_path)
        self.fetch()

    def on_unmount(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.client.close()

    # -- refresh cycle ---------------------------------------------------------------------------

    def action_refresh_now(self) -> None:
        """`r`: fetch now; if a fetch is already in flight, fetch again right after it, never alongside."""
        if self._fetching:
            self._again = True
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.fetch()

    def fetch(self) -> None:
        """Start one fetch; the next is armed only when this one has posted its answer."""
        self._fetching = True
        self._fetch_status()

    @work(thread=True, exclusive=True, group="refresh", exit_on_error=False)
    def _fetch_status(self) -> None:
        """Runs in a thread: blocking socket I/O must never stall the event loop (keys, redraws)."""
        try:
            message: Message = self.Fetched(self.client.status())
        except DaemonUnreachable as exc:
            message = self.Failed(str(exc), unreachable=True)
        except ApiError as exc:
            message = self.Failed(f"the daemon answered {exc.status}: {exc}", unreachable=False)
        except Exception as exc:  # noqa: BLE001 - a monitor must outlive a bad answer and keep retrying
            message = self.Failed(f"{type(exc).__name__}: {exc}", unreachable=False)
        self.post_message(message)

    def _arm(self) -> None:
        self._fetching = False
        if self._timer is not None:
            self._timer.stop()
        delay = 0.0 if self._again else self.refresh_s
        self._again = False
        self._timer = self.set_timer(delay, self.fetch)

    def on_overview_screen_fetched(self, message: Fetched) -> None:
        try:
            self.last_ok = datetime.now(UTC)
            self.query_one(DaemonBanner).show_up()
            self.query_one(DataTable).remove_class("-stale")
            self._show(message.status)
        finally:
            self._arm()

    def on_overview_screen_failed(self, message: Failed) -> None:
        try:
            last = self.last_ok.astimezone().strftime("%H:%M:%S") if self.last_ok else None
            problem = (f"daemon unreachable at {self.socket_path}" if message.unreachable
                       else f"daemon error at {self.socket_path}: {message.error}")
            self.query_one(DaemonBanner).show_down(problem, self.refresh_s, last)
            self.query_one(DataTable).add_class("-stale")
            if self.models:
                self._refresh_ages()
            else:
                self.query_one("#detail", Static).update(
                    f"{message.error}\nIs the daemon running? Start it with: modeltop daemon")
        finally:
            self._arm()

    def _refresh_ages(self) -> None:
        """While the daemon is down the data ages: keep the Updated column honest."""
        table = self.query_one(DataTable)
        now = datetime.now(UTC)
        for name, model in self.models.items():
            table.update_cell(name, "updated", age_text(model.get("last_update"), now))

    # -- rendering -------------------------------------------------------------------------------

    def _show(self, status: dict[str, Any]) -> None:
        """Update the table in place when its shape is unchanged, so the cursor and scroll stay put."""
        models = sorted(status.get("models", []), key=model_order)
        self.models = {m["name"]: m for m in models}
        checks = sorted({c["check"] for m in models for c in m.get("checks", [])})
        table = self.query_one(DataTable)
        now = datetime.now(UTC)
        if checks != self.check_names or [key.value for key in table.rows] != list(self.models):
            self._rebuild(table, checks, now)
        else:
            for model in models:
                for column, value in zip(self._column_keys(), self._cells(model, now), strict=True):
                    table.update_cell(model["name"], column, value)
        self._show_detail()

    def _column_keys(self) -> list[str]:
        return ["model", "alerts", "updated", *self.check_names]

    def _rebuild(self, table: DataTable, checks: list[str], now: datetime) -> None:
        """Models or checks came or went: rebuild, then put the cursor back on the same model."""
        highlighted = self._highlighted()
        table.clear(columns=checks != self.check_names)
        if not table.columns:
            self.check_names = checks
            # the summary first: at 80 columns with many checks, the last check columns scroll, not these
            table.add_column("Model", key="model")
            table.add_column("Alerts", key="alerts")
            table.add_column("Age", key="updated", width=UPDATED_WIDTH)
            for check in checks:
                title = COLUMN_TITLES.get(check, check)
                table.add_column(title, key=check, width=max(len(title), STATUS_WIDTH))
        for model in self.models.values():
            table.add_row(*self._cells(model, now), key=model["name"])
        if highlighted in self.models:
            table.move_cursor(row=table.get_row_index(highlighted), animate=False)

    def _cells(self, model: dict[str, Any], now: datetime) -> list[Any]:
        by_check = {c["check"]: c["status"] for c in model.get("checks", [])}
        alerts = int(model.get("open_alerts") or 0)
        name_style = "italic cyan" if model["name"] == HOST_ROW else "bold"
        return [
            Text(model["name"], style=name_style),
            Text(str(alerts), style="bold white on red" if alerts else "dim"),
            age_text(model.get("last_update"), now),
            *[status_text(by_check[c]) if c in by_check else MISSING for c in self.check_names],
        ]

    def _highlighted(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except CellDoesNotExist:
            return None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        """The reasons are the "why" behind each symbol: show them for the highlighted model."""
        detail = self.query_one("#detail", Static)
        model = self.models.get(self._highlighted() or "")
        if model is None:
            detail.update("" if self.models else "the daemon has no models configured")
            return
        alerts = int(model.get("open_alerts") or 0)
        text = Text()
        text.append(model["name"], style="bold")
        if model["name"] == HOST_ROW:
            text.append(" (this host)", style="italic")
        text.append(f"  ·  {alerts} open alert{'' if alerts == 1 else 's'}", style="bold red" if alerts else "dim")
        for check in model.get("checks", []):
            text.append("\n")
            text.append_text(status_text(check.get("status")))
            text.append(f"  {check['check']}: {check.get('reason') or '—'}")
        detail.update(text)
