"""Action requests from operators, each written to the append-only audit log (`actions` table).

Actions register by name like checks do; later issues add retrain, promote and rollback. Every request
is recorded, including rejected ones, with the peer's user and uid, because an audit trail that only
shows what succeeded cannot answer "who tried what".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from daemon import alerts, backfill
from daemon.durations import parse_duration
from daemon.store.db import utcnow

if TYPE_CHECKING:
    from daemon.service import Daemon


@dataclass
class ActionRequest:
    action: str
    model: str | None
    params: dict[str, Any]
    actor: str
    uid: int | None


@dataclass
class ActionOutcome:
    status: Literal["ok", "rejected", "failed"]
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail, **self.data}


Handler = Callable[["Daemon", ActionRequest], ActionOutcome]
_ACTIONS: dict[str, Handler] = {}


def action(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _ACTIONS[name] = fn
        return fn
    return register


def known() -> list[str]:
    return sorted(_ACTIONS)


def perform(daemon: Daemon, request: ActionRequest) -> ActionOutcome:
    handler = _ACTIONS.get(request.action)
    if not isinstance(request.params, dict):
        outcome = ActionOutcome("rejected", "params must be a JSON object")
    elif handler is None:
        outcome = ActionOutcome("rejected", f"unknown action {request.action!r}; known actions: "
                                + ", ".join(known()))
    elif request.model is not None and request.model not in {m.name for m in daemon.config.models}:
        outcome = ActionOutcome("rejected", f"unknown model {request.model!r}")
    else:
        outcome = handler(daemon, request)
    with daemon.store.transaction() as cur:
        cur.execute(
            "INSERT INTO actions (ts, actor, uid, model, action, params, status, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [utcnow(), request.actor, request.uid, request.model, request.action[:100],
             json.dumps(request.params if isinstance(request.params, dict) else {})[:4096],
             outcome.status, outcome.detail],
        )
    return outcome


@action("acknowledge")
def acknowledge(daemon: Daemon, request: ActionRequest) -> ActionOutcome:
    """params: {"alert_id": N}: an operator has seen an open alert and is on it."""
    alert_id = request.params.get("alert_id")
    if not isinstance(alert_id, int) or isinstance(alert_id, bool):
        return ActionOutcome("rejected", "params.alert_id must be an integer")
    with daemon.store.transaction() as cur:
        done = alerts.acknowledge(cur, alert_id, request.actor, utcnow())
    if not done:
        return ActionOutcome("failed", f"alert {alert_id} is not open")
    return ActionOutcome("ok", f"alert {alert_id} acknowledged by {request.actor}", {"alert_id": alert_id})


@action("backfill")
def backfill_model(daemon: Daemon, request: ActionRequest) -> ActionOutcome:
    """params: {"since": T, "until": T (default now), "every": "1h", "checks": [names] (default all that can be
    replayed)}: evaluate the model's checks as of each past window's end (see daemon/backfill.py)."""
    if request.model is None:
        return ActionOutcome("rejected", "backfill needs a model")
    params = request.params
    try:
        since = backfill.parse_time(params.get("since"), "since")
        until = backfill.parse_time(params["until"], "until") if params.get("until") else utcnow()
        try:
            every = parse_duration(params.get("every", "1h"))
        except ValueError:
            raise backfill.BackfillError(
                f"--every must be a duration such as 1h, not {params.get('every')!r}") from None
        names = params.get("checks") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise backfill.BackfillError("checks must be a list of check names")
        plan = backfill.plan(daemon.config.model(request.model), since, until, every, tuple(names))
    except backfill.BackfillError as exc:
        return ActionOutcome("rejected", str(exc))
    result = backfill.run(daemon.store, daemon.config.daemon, daemon.host, plan, request.actor, daemon.stopping.is_set)
    opened = len(result["alerts"])
    detail = (f"backfill {result['backfill_id']} of {request.model}: {result['windows']} windows x "
              f"{len(plan.checks)} checks ({result['state']}), {opened} alert{'s' if opened != 1 else ''} "
              "would have opened")
    return ActionOutcome("ok" if result["state"] == "done" else "failed", detail, result)
