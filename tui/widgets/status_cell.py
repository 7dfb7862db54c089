"""How a check status looks in a cell: a text symbol as well as a colour, so it reads on any terminal
(monochrome, colour-blind operators, copy-pasted into a ticket)."""

from __future__ import annotations

from rich.text import Text

STATUS_STYLES: dict[str, tuple[str, str]] = {
    "ok": ("✔ ok", "bold green"),
    "warn": ("▲ warn", "bold yellow"),
    "crit": ("✖ crit", "bold red"),
    "error": ("! err", "bold magenta"),
    "insufficient_data": ("… n/a", "dim"),
    "pending": ("· wait", "dim"),  # short labels: six checks and the summary fit in 80 columns
}
# A model that has no such check: distinct from every status, so an empty cell never reads as "ok".
MISSING = Text("—", style="dim")
# Wide enough for the longest label, so a cell going from "✔ ok" to "▲ warn" never gets cut.
STATUS_WIDTH = max(len(label) for label, _ in STATUS_STYLES.values())


def status_text(status: str | None) -> Text:
    """The cell for one status; an unknown status (a newer daemon) is shown as-is rather than hidden."""
    if status is None:
        return MISSING
    label, style = STATUS_STYLES.get(status, (f"? {status}", "bold"))
    return Text(label, style=style)
