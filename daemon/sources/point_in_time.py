"""What was known at a given time: the one place that decides which labels a window evaluated at `now` sees."""

from __future__ import annotations

from datetime import datetime
from typing import Any

# Each request's label as known at a time: arrived by then (its own ts), not NULL, the first one when sent twice.
_KNOWN_LABELS = ("(SELECT request_id, arg_min(label, ts) AS label FROM labels WHERE model = {model} "
                 "AND ts <= {now} AND label IS NOT NULL GROUP BY request_id)")
# The same subquery for statements with named parameters: bind `model` and `now`.
LABELS_KNOWN_NAMED = _KNOWN_LABELS.format(model="$model", now="$now")


def labels_known_at(model: str, now: datetime) -> tuple[str, list[Any]]:
    """A subquery of each request's label as known at `now`, and its (positional) parameters.

    Point in time: a label counts only once it has arrived (its own ts <= now), so a window evaluated for a
    past time (backfill) never sees a label that came later; when a label was sent twice, the first wins.
    A NULL label is no label: it neither counts nor hides a later one.
    """
    return _KNOWN_LABELS.format(model="?", now="?"), [model, now]
