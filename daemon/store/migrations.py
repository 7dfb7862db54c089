"""Forward-only schema migrations, applied in order at start.

Each migration is a list of statements run in one transaction together with the version bump, so a
crash mid-migration leaves the previous version intact. Never edit a released migration: add one.
All timestamps are UTC (TIMESTAMP without zone) so ad-hoc queries need no time-zone extension.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "core tables: models, versions, labels, metrics, check runs, alerts, actions",
        [
            """CREATE TABLE models (
                name VARCHAR PRIMARY KEY,
                task VARCHAR NOT NULL,
                features VARCHAR NOT NULL,          -- JSON: feature name -> DuckDB type
                first_seen TIMESTAMP NOT NULL,
                updated_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE model_versions (
                model VARCHAR NOT NULL,
                version VARCHAR NOT NULL,
                status VARCHAR NOT NULL,            -- active | candidate | retired
                path VARCHAR,
                created_at TIMESTAMP NOT NULL,
                activated_at TIMESTAMP,
                PRIMARY KEY (model, version)
            )""",
            """CREATE TABLE labels (
                model VARCHAR NOT NULL,
                request_id VARCHAR NOT NULL,
                label VARCHAR,
                ts TIMESTAMP NOT NULL,              -- when the label became known
                ingested_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE metrics (
                ts TIMESTAMP NOT NULL,
                model VARCHAR NOT NULL,             -- '@host' for host-wide results
                "check" VARCHAR NOT NULL,
                metric VARCHAR NOT NULL,
                dims VARCHAR NOT NULL DEFAULT '{}', -- JSON object, e.g. {"feature":"age"}
                value DOUBLE
            )""",
            "CREATE SEQUENCE check_runs_id",
            """CREATE TABLE check_runs (
                id BIGINT PRIMARY KEY DEFAULT nextval('check_runs_id'),
                ts TIMESTAMP NOT NULL,
                model VARCHAR NOT NULL,
                "check" VARCHAR NOT NULL,
                status VARCHAR NOT NULL,            -- ok | warn | crit | error | insufficient_data
                reason VARCHAR NOT NULL,
                duration_s DOUBLE NOT NULL
            )""",
            "CREATE SEQUENCE alerts_id",
            """CREATE TABLE alerts (
                id BIGINT PRIMARY KEY DEFAULT nextval('alerts_id'),
                model VARCHAR NOT NULL,
                "check" VARCHAR NOT NULL,
                severity VARCHAR NOT NULL,          -- warn | crit | error
                state VARCHAR NOT NULL,             -- open | acknowledged | resolved
                reason VARCHAR NOT NULL,
                opened_at TIMESTAMP NOT NULL,
                last_seen_at TIMESTAMP NOT NULL,
                acknowledged_at TIMESTAMP,
                acknowledged_by VARCHAR,
                resolved_at TIMESTAMP
            )""",
            "CREATE SEQUENCE actions_id",
            """CREATE TABLE actions (
                id BIGINT PRIMARY KEY DEFAULT nextval('actions_id'),
                ts TIMESTAMP NOT NULL,
                actor VARCHAR NOT NULL,             -- user name of the requesting peer, or 'policy'
                uid INTEGER,                        -- peer uid from SO_PEERCRED
                model VARCHAR,
                action VARCHAR NOT NULL,
                params VARCHAR NOT NULL,            -- JSON
                status VARCHAR NOT NULL,            -- ok | failed | rejected
                detail VARCHAR NOT NULL
            )""",
            "CREATE INDEX metrics_series ON metrics (model, \"check\", metric, ts)",
            "CREATE INDEX check_runs_latest ON check_runs (model, \"check\", ts)",
        ],
    ),
    (
        "ingest bookkeeping: per-file offsets and the quarantine of rejected records",
        [
            """CREATE TABLE ingest_offsets (
                model VARCHAR NOT NULL,
                source VARCHAR NOT NULL,            -- predictions | labels
                file VARCHAR NOT NULL,              -- file name inside the spool directory
                inode UBIGINT NOT NULL,
                size UBIGINT NOT NULL,
                "offset" UBIGINT NOT NULL,          -- bytes consumed (complete lines only)
                rows UBIGINT NOT NULL,
                updated_at TIMESTAMP NOT NULL,
                PRIMARY KEY (model, source, file)
            )""",
            """CREATE TABLE quarantine (
                ts TIMESTAMP NOT NULL,
                model VARCHAR NOT NULL,
                source VARCHAR NOT NULL,
                file VARCHAR NOT NULL,
                line UBIGINT,
                raw VARCHAR NOT NULL,               -- first 4 KiB of the record
                reason VARCHAR NOT NULL
            )""",
        ],
    ),
    (
        "backfills: results, metrics and alerts of checks replayed over past windows, kept apart from live ones",
        [
            "CREATE SEQUENCE backfills_id",
            """CREATE TABLE backfills (
                id BIGINT PRIMARY KEY DEFAULT nextval('backfills_id'),
                model VARCHAR NOT NULL,
                checks VARCHAR NOT NULL,            -- JSON array of check names
                since TIMESTAMP NOT NULL,
                "until" TIMESTAMP NOT NULL,
                every_s DOUBLE NOT NULL,
                requested_by VARCHAR NOT NULL,
                started_at TIMESTAMP NOT NULL,
                finished_at TIMESTAMP,
                windows BIGINT NOT NULL DEFAULT 0,  -- evaluation times done
                state VARCHAR NOT NULL              -- running | done | interrupted | failed
            )""",
            """CREATE TABLE backfill_metrics (
                backfill_id BIGINT NOT NULL,
                ts TIMESTAMP NOT NULL,              -- the window's end: the time the check was evaluated as of
                model VARCHAR NOT NULL,
                "check" VARCHAR NOT NULL,
                metric VARCHAR NOT NULL,
                dims VARCHAR NOT NULL DEFAULT '{}',
                value DOUBLE
            )""",
            """CREATE TABLE backfill_check_runs (
                backfill_id BIGINT NOT NULL,
                ts TIMESTAMP NOT NULL,
                model VARCHAR NOT NULL,
                "check" VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                reason VARCHAR NOT NULL,
                duration_s DOUBLE NOT NULL
            )""",
            "CREATE SEQUENCE backfill_alerts_id",
            """CREATE TABLE backfill_alerts (
                id BIGINT PRIMARY KEY DEFAULT nextval('backfill_alerts_id'),
                backfill_id BIGINT NOT NULL,
                model VARCHAR NOT NULL,
                "check" VARCHAR NOT NULL,
                severity VARCHAR NOT NULL,
                state VARCHAR NOT NULL,             -- open | resolved (nobody acknowledges a replay)
                reason VARCHAR NOT NULL,
                opened_at TIMESTAMP NOT NULL,
                last_seen_at TIMESTAMP NOT NULL,
                acknowledged_at TIMESTAMP,
                acknowledged_by VARCHAR,
                resolved_at TIMESTAMP
            )""",
            "CREATE INDEX backfill_metrics_series ON backfill_metrics (backfill_id, model, \"check\", metric, ts)",
        ],
    ),
]

LATEST = len(MIGRATIONS)
