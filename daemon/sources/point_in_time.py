"""What was known at a given time: the one place that decides which labels a window evaluated at `now` sees."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def labels_known_at(model: str, now: datetime) -> tuple[str, list[Any]]:
    """A subquery of each request's label as known at `now`, and its parameters.

    Point in time: a label counts only once it has arrived (its own ts <= now), so a window evaluated for a
    past time (backfill) never sees a label that came later; when a label was sent twice, the first wins.
    A NULL label is no label: it neither counts nor hides a later one.
    """
    return ("(SELECT request_id, arg_min(label, ts) AS label FROM labels WHERE model = ? AND ts <= ? "
            "AND label IS NOT NULL GROUP BY request_id)", [model, now])
