"""Plain-text renderings for the CLI: status tables and query results (csv, json, aligned table)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

STATUS_LABELS = {
    "ok": "OK", "warn": "WARN", "crit": "CRIT", "error": "ERROR", "insufficient_data": "N/A",
    "pending": "PENDING",
}
# Exit codes for `modeltop status`, usable from cron and Nagios-style monitors.
EXIT_OK, EXIT_WARN, EXIT_CRIT, EXIT_UNREACHABLE = 0, 1, 2, 3


def exit_code(status: dict[str, Any]) -> int:
    """0 all ok, 1 some warn, 2 some crit (a check in error counts as crit: it cannot vouch for the model)."""
    worst = EXIT_OK
    for model in status["models"]:
        for check in model["checks"]:
            if check["status"] in ("crit", "error"):
                return EXIT_CRIT
            if check["status"] == "warn":
                worst = EXIT_WARN
    return worst


def age(iso: str | None, now: datetime | None = None) -> str:
    if not iso:
        return "-"
    then = datetime.fromisoformat(iso.rstrip("Z")).replace(tzinfo=UTC)
    seconds = max(0.0, ((now or datetime.now(UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 60) -> str:
    """An aligned text table; long cells are cut with '…' so one row stays one line."""
    def cell(value: Any) -> str:
        text = "NULL" if value is None else str(value)
        text = text.replace("\n", " ")
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    body = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return "\n".join(lines)


def status_table(status: dict[str, Any]) -> str:
    rows = []
    for model in status["models"]:
        for check in model["checks"]:
            rows.append([model["name"], check["check"], STATUS_LABELS.get(check["status"], check["status"]),
                         age(check["ts"]), check["reason"]])
    if not rows:
        return "no checks configured"
    text = table(["MODEL", "CHECK", "STATUS", "AGE", "REASON"], rows)
    alerts = sum(m["open_alerts"] for m in status["models"])
    text += f"\n{alerts} open alert{'s' if alerts != 1 else ''}"
    for model in status["models"]:
        counts = model.get("quarantined") or {}
        if counts:
            kinds = ", ".join(f"{n} {reason}" for reason, n in list(counts.items())[:3])
            text += f"\n{model['name']}: {sum(counts.values())} records quarantined ({kinds})"
    return text


def result_text(result: dict[str, Any], fmt: str) -> str:
    columns, rows = result["columns"], result["rows"]
    if fmt == "json":
        return json.dumps([dict(zip(columns, r, strict=True)) for r in rows], indent=None)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    return table(columns, rows)


def backfill_report(outcome: dict[str, Any]) -> str:
    """What `modeltop backfill` prints: statuses per check, the alerts that would have opened, where to look."""
    since, until = (datetime.fromisoformat(outcome[k]) for k in ("since", "until"))
    lines = [f"backfill {outcome['backfill_id']} of {outcome['model']}: {since:%Y-%m-%d %H:%M} → "
             f"{until:%Y-%m-%d %H:%M} UTC, {outcome['windows']} windows in {outcome.get('seconds', 0):.1f} s"
             + ("" if outcome["status"] == "ok" else f" ({outcome['state']})"), ""]
    kinds = ("ok", "warn", "crit", "insufficient_data", "error")
    lines.append(table(["check", *(STATUS_LABELS[k] for k in kinds)], [[name, *(counts.get(k, 0) for k in kinds)]
                                          for name, counts in outcome.get("statuses", {}).items()]))
    alerts = outcome["alerts"]
    lines += ["", f"alerts that would have opened: {len(alerts) or 'none'}"]
    if alerts:
        lines.append(table(["opened", "resolved", "check", "severity", "reason"], [
            [f"{datetime.fromisoformat(a['opened_at']):%Y-%m-%d %H:%M}",
             f"{datetime.fromisoformat(a['resolved_at']):%Y-%m-%d %H:%M}" if a["resolved_at"] else "-",
             a["check"], a["severity"], a["reason"]] for a in alerts]))
    lines += ["", f"every result: modeltop sql \"SELECT * FROM backfill_check_runs WHERE backfill_id = "
                  f"{outcome['backfill_id']} ORDER BY ts\""]
    return "\n".join(lines)
