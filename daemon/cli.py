"""`modeltop`: the command line. Bare `modeltop` opens the TUI.

Commands talk to the daemon over its socket; with the daemon stopped, `status` and `sql` open the store
file read-only instead and say so on stderr (post-mortem works without a daemon).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from daemon.config import Config, ConfigError, find_config, load_config
from daemon.formatting import EXIT_UNREACHABLE, backfill_report, exit_code, result_text, status_table
from daemon.store.errors import StoreError

EXIT_USAGE = 2


def _config(args: argparse.Namespace) -> Config:
    return load_config(find_config(args.config), args.state_dir)


def _socket(args: argparse.Namespace) -> Path:
    """--socket, $MODELTOP_SOCKET, else the config's daemon.socket."""
    explicit = args.socket or os.environ.get("MODELTOP_SOCKET")
    return Path(explicit) if explicit else _config(args).daemon.socket


def _client(args: argparse.Namespace):
    from daemon.client import Client
    return Client(_socket(args))


def _offline_store(args: argparse.Namespace):
    """The store opened read-only, with the notice that the data may be stale."""
    from daemon.store.db import open_read_only
    database = _config(args).daemon.database
    con = open_read_only(database)
    print(f"modeltop: daemon not running; reading {database} read-only (last recorded state)", file=sys.stderr)
    return con


# -- commands --------------------------------------------------------------------------------------


def cmd_daemon(args: argparse.Namespace) -> int:
    from daemon.logs import setup_logging
    from daemon.service import Daemon

    path = find_config(args.config)
    config = load_config(path, args.state_dir)
    setup_logging(config.daemon.log_level)
    return Daemon(path, args.state_dir).run()


def cmd_check_config(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else find_config(args.config)
    config = load_config(path, args.state_dir)
    checks = len(config.host_checks) + sum(len(m.checks) for m in config.models)
    print(f"{path}: ok ({len(config.models)} models, {checks} checks; state in {config.daemon.state_dir})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from daemon.client import ApiError, DaemonUnreachable
    try:
        with _client(args) as client:
            status = client.status()
        code = exit_code(status)
    except (DaemonUnreachable, ApiError) as exc:
        print(f"modeltop: {exc}", file=sys.stderr)
        status = _offline_status(args)
        code = EXIT_UNREACHABLE
    if status is not None:
        print(json.dumps({**status, "exit_code": code}, indent=2) if args.json else status_table(status))
    return code


def _offline_status(args: argparse.Namespace) -> dict | None:
    from daemon.store import queries
    try:
        con = _offline_store(args)
    except (StoreError, ConfigError) as exc:
        print(f"modeltop: {exc}", file=sys.stderr)
        return None
    try:
        return queries.status(con)
    finally:
        con.close()


def cmd_sql(args: argparse.Namespace) -> int:
    from daemon.client import ApiError, DaemonUnreachable
    try:
        with _client(args) as client:
            result = client.sql(args.query)
    except ApiError as exc:
        print(f"modeltop: {exc}", file=sys.stderr)
        return 1
    except DaemonUnreachable:
        result = _offline_sql(args)
        if result is None:
            return 1
    print(result_text(result, args.format))
    for note in result.get("notes", []):
        print(f"modeltop: {note}", file=sys.stderr)
    return 0


def _offline_sql(args: argparse.Namespace) -> dict | None:
    from daemon.store.readonly_sql import SqlFailed, SqlRejected, run_query
    con = _offline_store(args)
    try:
        config = _config(args)
        return run_query(con, args.query, config.daemon.sql_max_rows, config.daemon.sql_timeout).as_json()
    except (SqlRejected, SqlFailed) as exc:
        print(f"modeltop: {'rejected: ' if isinstance(exc, SqlRejected) else ''}{exc}", file=sys.stderr)
        return None
    finally:
        con.close()


def cmd_snapshot(args: argparse.Namespace) -> int:
    from daemon.client import ApiError, DaemonUnreachable
    dest = Path(args.path).expanduser().resolve()
    try:
        with _client(args) as client:
            result = client.snapshot(dest)
    except ApiError as exc:
        print(f"modeltop: {exc}", file=sys.stderr)
        return 1
    except DaemonUnreachable:
        from daemon.store.snapshot import write_snapshot
        con = _offline_store(args)
        try:
            result = {"path": str(dest), "bytes": write_snapshot(con, _config(args).daemon.database, dest)}
        except (FileExistsError, FileNotFoundError, PermissionError) as exc:
            print(f"modeltop: {exc}", file=sys.stderr)
            return 1
        finally:
            con.close()
    print(f"snapshot written to {result['path']} ({result['bytes'] / 1e6:.1f} MB); open it with: "
          f"duckdb -readonly {result['path']}")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """Through the daemon; with it stopped, straight into the store file (the daemon would hold its lock)."""
    from daemon.client import ApiError, DaemonUnreachable
    params = {"since": args.since, "until": args.until, "every": args.every, "checks": args.check or []}
    try:
        with _client(args) as client:
            outcome = client.action("backfill", args.model, wait=7 * 86400.0, **params)
    except ApiError as exc:
        print(f"modeltop: {exc}", file=sys.stderr)
        return 1
    except DaemonUnreachable:
        outcome = _offline_backfill(args, params)
    if outcome.get("status") == "rejected" or "backfill_id" not in outcome:
        print(f"modeltop: {outcome.get('detail', outcome)}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(outcome, indent=2) if args.json else backfill_report(outcome))
    return 0 if outcome["status"] == "ok" else 1


def _offline_backfill(args: argparse.Namespace, params: dict) -> dict:
    from daemon.actions import ActionRequest, perform
    from daemon.service import Daemon, data_directories
    from daemon.store.db import Store

    config = _config(args)
    print(f"modeltop: daemon not running; backfilling into {config.daemon.database} directly", file=sys.stderr)
    daemon = Daemon(find_config(args.config), args.state_dir)
    daemon.store = Store(config.daemon.database, data_directories(config))
    try:
        user = os.environ.get("USER") or str(os.getuid())
        return perform(daemon, ActionRequest("backfill", args.model, params, user, os.getuid())).as_json()
    finally:
        daemon.store.close()


def cmd_tui(args: argparse.Namespace) -> int:
    from tui.app import run
    run(_socket(args), refresh_s=args.refresh)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from daemon.demo.orchestrate import run_demo
    return run_demo(config_path=_demo_config(args), state_dir=args.state_dir, headless=args.headless,
                    seconds=args.seconds)


def _demo_config(args: argparse.Namespace) -> Path:
    """The demo runs the reference config.toml: the one found by the usual search, else the repository's."""
    try:
        return find_config(args.config)
    except ConfigError:
        return Path(__file__).resolve().parent.parent / "config.toml"


# -- parser ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    def common_options(default: object) -> argparse.ArgumentParser:
        """Accepted before and after the command; after it, an option left out keeps the earlier value."""
        common = argparse.ArgumentParser(add_help=False, argument_default=default)
        common.add_argument("--config", metavar="PATH",
                            help="config file (default: $MODELTOP_CONFIG, ./config.toml, /etc/modeltop/config.toml)")
        common.add_argument("--state-dir", metavar="DIR", type=Path, help="override daemon.state_dir")
        common.add_argument("--socket", metavar="PATH", help="daemon socket (default: $MODELTOP_SOCKET or config)")
        return common

    common = common_options(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="modeltop", parents=[common_options(None)],
                                     description="Watch deployed ML models; act on what you see.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_, description=help_)
        p.set_defaults(func=fn)
        return p

    add("daemon", cmd_daemon, "run the monitoring daemon (foreground; systemd Type=notify aware)")
    p = add("check-config", cmd_check_config, "validate a config file and exit (0 valid, 2 invalid)")
    p.add_argument("path", nargs="?", help="config file to check (default: the usual search)")
    p = add("status", cmd_status, "models and checks; exit 0 ok, 1 warn, 2 crit, 3 daemon unreachable")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add("sql", cmd_sql, "run a read-only SQL query against the store")
    p.add_argument("query")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p = add("snapshot", cmd_snapshot, "write a consistent copy of the store that the duckdb shell can open")
    p.add_argument("path")
    p = add("backfill", cmd_backfill, "replay a model's checks over past windows: what would have fired?")
    p.add_argument("model")
    p.add_argument("--since", required=True, metavar="T", help="ISO time (UTC unless it says) or a duration ago: 7d")
    p.add_argument("--until", metavar="T", help="end of the period (default now)")
    p.add_argument("--every", default="1h", metavar="DURATION", help="evaluate at every this step (default 1h)")
    p.add_argument("--check", action="append", metavar="NAME", help="only this check (repeatable; default all "
                   "that can be replayed)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add("tui", cmd_tui, "open the terminal UI (the default command)")
    p.add_argument("--refresh", type=float, default=2.0, metavar="SECONDS", help="refresh period (default 2)")
    p = add("demo", cmd_demo, "run the daemon, a traffic simulator and the TUI on demo models")
    p.add_argument("--headless", action="store_true", help="no TUI: run, print `modeltop status`, exit")
    p.add_argument("--seconds", type=float, default=20.0, help="how long a --headless demo runs (default 20)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["tui", *(argv if argv is not None else sys.argv[1:])])
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"modeltop: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"modeltop: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
