"""The TUI overview with Pilot, against the real daemon on its real socket, at 80x24."""

from __future__ import annotations

import asyncio
import time

from textual.widgets import DataTable, Static

from support import BASE_CONFIG, prediction
from tui.app import ModeltopApp
from tui.widgets.daemon_banner import DaemonBanner

SIZE = (80, 24)


async def until(pilot, predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def row_texts(table: DataTable) -> dict[str, list[str]]:
    return {key.value: [str(cell) for cell in table.get_row(key)] for key in table.rows}


def test_rows_appear_with_status_symbols_and_reasons(running_daemon):
    running_daemon.write_predictions("churn", [prediction("r1")])

    async def scenario() -> None:
        app = ModeltopApp(running_daemon.socket, refresh_s=0.3)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(DataTable)
            await until(pilot, lambda: "churn" in row_texts(table) and "✔ ok" in row_texts(table)["churn"],
                        what="churn row with an ok freshness")
            rows = row_texts(table)
            assert list(rows) == ["churn", "@host"]  # models first, the host last
            columns = [str(c.label) for c in table.columns.values()]
            assert columns == ["Model", "Alerts", "Age", "freshness", "host"]
            assert rows["churn"][3] == "✔ ok" and rows["churn"][4] == "—"
            # the host row judges this machine, busy or not: any real status will do, not a placeholder
            await until(pilot, lambda: row_texts(table)["@host"][4] in ("✔ ok", "▲ warn", "✖ crit"),
                        what="host status")
            detail = str(app.screen.query_one("#detail", Static).render())
            assert "freshness: newest prediction" in detail
            await pilot.press("down")
            await until(pilot, lambda: "cpu" in str(app.screen.query_one("#detail", Static).render()),
                        what="host detail")
            assert not app.screen.query_one(DaemonBanner).is_down
            # The cursor stays on the host row across refreshes: the table must not jump under the reader.
            screen = app.screen
            seen = screen.last_ok
            for _ in range(3):
                await until(pilot, lambda seen=seen: screen.last_ok != seen, what="another refresh")
                seen = screen.last_ok
                assert table.cursor_row == 1

    asyncio.run(scenario())


def test_banner_when_the_daemon_goes_away_and_reconnect_when_it_returns(running_daemon):
    async def scenario() -> None:
        app = ModeltopApp(running_daemon.socket, refresh_s=0.3)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(DataTable)
            banner = app.screen.query_one(DaemonBanner)
            await until(pilot, lambda: "churn" in row_texts(table), what="rows")
            await asyncio.to_thread(running_daemon.stop)
            assert not running_daemon.socket.exists()
            await until(pilot, lambda: banner.is_down, what="banner")
            text = str(banner.render())
            assert "daemon unreachable at" in text and str(running_daemon.socket) in text
            assert "last data from" in text
            assert "churn" in row_texts(table)  # the last data stays, marked stale
            assert table.has_class("-stale")
            await asyncio.to_thread(running_daemon.start)
            await until(pilot, lambda: not banner.is_down, what="banner gone after reconnect")
            assert not table.has_class("-stale")

    asyncio.run(scenario())


def test_r_refreshes_now(running_daemon):
    async def scenario() -> None:
        app = ModeltopApp(running_daemon.socket, refresh_s=600)  # only `r` can cause a second fetch
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(DataTable)
            await until(pilot, lambda: "churn" in row_texts(table), what="first data")
            first = app.screen.last_ok
            await pilot.press("r")
            await until(pilot, lambda: app.screen.last_ok != first, what="a refresh after r")

    asyncio.run(scenario())


def test_q_quits(running_daemon):
    async def scenario() -> None:
        app = ModeltopApp(running_daemon.socket, refresh_s=0.3)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("q")
            await pilot.pause(0.2)
            assert not app.is_running

    asyncio.run(scenario())


def test_no_daemon_at_start_shows_the_banner(short_tmp):
    async def scenario() -> None:
        app = ModeltopApp(short_tmp / "nowhere.sock", refresh_s=0.3)
        async with app.run_test(size=SIZE) as pilot:
            banner = app.screen.query_one(DaemonBanner)
            await until(pilot, lambda: banner.is_down, what="banner")
            assert "no data yet" in str(banner.render())
            assert "no daemon socket" in str(app.screen.query_one("#detail", Static).render())

    asyncio.run(scenario())


def test_many_checks_scroll_sideways_under_a_fixed_model_column(daemon_handle):
    """Eleven checks do not fit 80 columns: long names get short headings, End scrolls, the model stays."""
    stanzas = ["drift", "multivariate_drift", "prediction_drift", "label_drift", "performance", "data_quality",
               "labels", "service"]
    daemon_handle.write_config(BASE_CONFIG + "".join(f'\n[models.checks.{name}]\ninterval = "1s"\n' for name in stanzas)
                               + '\n[models.checks.segments]\ncolumn = "contract"\n')
    daemon_handle.start()

    async def scenario() -> None:
        app = ModeltopApp(daemon_handle.socket, refresh_s=0.3)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(DataTable)
            await until(pilot, lambda: "churn" in row_texts(table), what="rows")
            headings = [str(c.label) for c in table.columns.values()]
            assert {"multivar", "outputs", "prior", "quality", "perform", "segments"} <= set(headings)
            assert table.virtual_size.width > SIZE[0]
            await pilot.press("end")
            await until(pilot, lambda: table.scroll_x > 0, what="scrolled to the last columns")
            assert table.fixed_columns == 1 and table.is_valid_column_index(len(headings) - 1)

    asyncio.run(scenario())
