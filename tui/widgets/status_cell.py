"""How a check status looks in a cell: a text symbol as well as a colour, so it reads on any terminal
(monochrome, colour-blind operators, copy-pasted into a ticket)."""

from __future__ import annotations

from rich.text import Text

STATUS_STYLES: dict[str, tuple[str, str]] = {
    "ok": ("✔ ok", "bold green"),
    "warn": ("▲ warn", "bold yellow"),
    "crit": ("✖ crit", "bold red"),
    "error": ("! error", "bold magenta"),
    "insufficient_data": ("… n/a", "dim"),
    "pending": ("· pending", "dim"),
}
MISSING = Text("—", style="dim")


def status_text(status: str | None) -> Text:
    if status is None:
        return MISSING
    label, style = STATUS_STYLES.get(status, (f"? {status}", "bold"))
    return Text(label, style=style)
