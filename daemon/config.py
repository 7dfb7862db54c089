"""Loading and validating config.toml.

Validation is complete and up front: a daemon that starts with a typo in a threshold monitors the wrong
thing silently, so every key is checked for existence, type and range, and the first problem is reported
with the file, the key path (`models[1].checks.freshness.warn_after`), what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import checks
from checks.base import CheckSpec, Duration
from daemon.durations import parse_duration

SEARCH_PATHS_HELP = "--config, $MODELTOP_CONFIG, ./config.toml, /etc/modeltop/config.toml"
SYSTEM_CONFIG = Path("/etc/modeltop/config.toml")
LOG_LEVELS = ("debug", "info", "warning", "error")
TASKS = ("classification", "regression")
# Feature types map onto DuckDB column types; the names people write in config are on the left.
FEATURE_TYPES = {
    "double": "DOUBLE", "float": "DOUBLE", "int": "BIGINT", "integer": "BIGINT", "bigint": "BIGINT",
    "string": "VARCHAR", "varchar": "VARCHAR", "category": "VARCHAR", "bool": "BOOLEAN", "boolean": "BOOLEAN",
}
MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
FEATURE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
HOST_SCOPE = "@host"  # the `model` value of host-wide results; '@' can never start a model name


class ConfigError(Exception):
    """A config problem a person can fix: which file, which key, what was expected, what was found."""

    def __init__(self, file: Path | str, key: str, expected: str, found: str = "") -> None:
        self.file, self.key, self.expected, self.found = str(file), key, expected, found
        where = f"{self.file}: {key}: " if key else f"{self.file}: "
        super().__init__(where + f"expected {expected}" + (f", found {found}" if found else ""))


@dataclass(frozen=True)
class CheckConfig:
    name: str
    interval: float
    settings: Any


@dataclass(frozen=True)
class ModelConfig:
    name: str
    task: str
    predictions: Path
    labels: Path | None
    reference: Path | None
    target: str
    features: dict[str, str]  # feature name -> DuckDB type
    checks: tuple[CheckConfig, ...]

    @property
    def predictions_table(self) -> str:
        return f"predictions_{self.name}"


@dataclass(frozen=True)
class DaemonSettings:
    state_dir: Path
    socket: Path
    log_level: str
    ingest_interval: float
    sql_timeout: float
    sql_max_rows: int
    shutdown_timeout: float
    retention: float = 30 * 86400.0  # raw predictions, labels and quarantine rows older than this are deleted
    metrics_retention: float = 400 * 86400.0  # metrics, check runs and resolved alerts

    @property
    def database(self) -> Path:
        return self.state_dir / "modeltop.duckdb"


@dataclass(frozen=True)
class Config:
    path: Path
    daemon: DaemonSettings
    host_checks: tuple[CheckConfig, ...]
    models: tuple[ModelConfig, ...]

    def model(self, name: str) -> ModelConfig:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)


def find_config(explicit: str | None = None) -> Path:
    """The config file by the documented search order; ConfigError listing the places tried."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("MODELTOP_CONFIG")
    if env:
        return Path(env)
    for candidate in (Path("config.toml"), SYSTEM_CONFIG):
        if candidate.is_file():
            return candidate
    raise ConfigError("config", "", f"a config file (searched {SEARCH_PATHS_HELP})", "none")


def load_config(path: Path | str, state_dir: Path | str | None = None) -> Config:
    """Parse and validate; `state_dir` overrides daemon.state_dir (used by `demo` and tests)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "", "an existing config file", "no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "", "a readable UTF-8 TOML file", str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", "valid TOML", str(exc)) from None
    return _Validator(path).config(raw, state_dir)


def _describe(value: object) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "table"}
    if isinstance(value, Duration):
        return f"{value:g}s"
    text = repr(value) if not isinstance(value, dict | list) else ""
    label = next((name for t, name in kind.items() if isinstance(value, t)), type(value).__name__)
    return f"{text} ({label})" if text else label


class _Validator:
    """Walks the raw TOML, converting as it goes; each method gets the key path for its messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.resolve().parent

    def fail(self, key: str, expected: str, found: object = dataclasses.MISSING, *, raw: str = "") -> typing.NoReturn:
        shown = raw or ("nothing" if found is dataclasses.MISSING else _describe(found))
        raise ConfigError(self.path, key, expected, shown)

    def table(self, raw: dict, key: str, allowed: set[str]) -> dict:
        if not isinstance(raw, dict):
            self.fail(key, "a table", raw)
        for name in raw:
            if name not in allowed:
                self.fail(f"{key}.{name}" if key else name, "one of the known keys: " + ", ".join(sorted(allowed)),
                          raw="an unknown key")
        return raw

    def value(self, raw: dict, key: str, name: str, kind: Any, default: Any = dataclasses.MISSING) -> Any:
        full = f"{key}.{name}" if key else name
        if name not in raw:
            if default is dataclasses.MISSING:
                self.fail(full, f"{self.kind_name(kind)} (required)")
            return default
        return self.convert(full, raw[name], kind)

    @staticmethod
    def kind_name(kind: Any) -> str:
        return {
            Duration: "a duration such as \"30s\", \"5m\", \"1h\" or a number of seconds",
            float: "a number", int: "an integer", bool: "true or false", str: "a string",
        }.get(kind, getattr(kind, "__name__", str(kind)))

    def convert(self, key: str, value: Any, kind: Any) -> Any:
        if typing.get_origin(kind) is dict:  # settings typed dict[str, str]: a small TOML table of strings
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                self.fail(key, "a table of name = \"string\"", value)
            return dict(value)
        if typing.get_origin(kind) is tuple:  # settings typed tuple[str, ...]: an array of strings
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self.fail(key, "an array of strings", value)
            return tuple(value)
        if kind is Duration:
            try:
                return Duration(parse_duration(value))
            except ValueError:
                self.fail(key, self.kind_name(kind), value)
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(key, "a number", value)
            return float(value)
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(key, "an integer", value)
            return value
        if kind is bool:
            if not isinstance(value, bool):
                self.fail(key, "true or false", value)
            return value
        if kind is str:
            if not isinstance(value, str):
                self.fail(key, "a string", value)
            return value
        raise TypeError(f"unsupported settings type {kind!r} at {key}")

    def choice(self, raw: dict, key: str, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.value(raw, key, name, str, default)
        if value not in choices:
            self.fail(f"{key}.{name}" if key else name, "one of " + ", ".join(choices), value)
        return value

    def positive(self, raw: dict, key: str, name: str, kind: Any, default: Any) -> Any:
        value = self.value(raw, key, name, kind, default)
        if value <= 0:
            self.fail(f"{key}.{name}", f"{self.kind_name(kind)} greater than zero", value)
        return value

    def path_value(self, raw: dict, key: str, name: str, base: Path, required: bool = False) -> Path | None:
        text = self.value(raw, key, name, str, dataclasses.MISSING if required else None)
        if text is None:
            return None
        if not text:
            self.fail(f"{key}.{name}", "a non-empty path", text)
        p = Path(text).expanduser()
        return p if p.is_absolute() else (base / p)

    # -- sections ---------------------------------------------------------------------------------

    def config(self, raw: dict, state_dir_override: Path | str | None) -> Config:
        self.table(raw, "", {"daemon", "host", "models"})
        daemon = self.daemon(raw.get("daemon", {}), state_dir_override)
        host = self.table(raw.get("host", {}), "host", {"checks"})
        host_checks = self.checks(host.get("checks", {}), "host.checks", "host")
        models_raw = raw.get("models", [])
        if not isinstance(models_raw, list):
            self.fail("models", "an array of tables ([[models]])", models_raw)
        models: list[ModelConfig] = []
        for i, m in enumerate(models_raw):
            model = self.model(m, f"models[{i}]", daemon.state_dir)
            if any(other.name == model.name for other in models):
                self.fail(f"models[{i}].name", "a name not used by another model", model.name)
            models.append(model)
        return Config(self.path, daemon, host_checks, tuple(models))

    def daemon(self, raw: dict, state_dir_override: Path | str | None) -> DaemonSettings:
        key = "daemon"
        self.table(raw, key, {"state_dir", "socket", "log_level", "ingest_interval", "sql_timeout",
                              "sql_max_rows", "shutdown_timeout", "retention", "metrics_retention"})
        if state_dir_override is not None:
            state_dir = Path(state_dir_override).resolve()
        else:
            state_dir = self.path_value(raw, key, "state_dir", self.base) or (self.base / "state")
        socket = self.path_value(raw, key, "socket", state_dir)
        if socket is None:
            runtime = os.environ.get("RUNTIME_DIRECTORY")
            socket = Path(runtime.split(":")[0]) / "modeltop.sock" if runtime else state_dir / "modeltop.sock"
        if len(str(socket).encode()) > 100:
            self.fail(f"{key}.socket", "a socket path shorter than 100 bytes (a Unix socket limit)", str(socket))
        shutdown = self.positive(raw, key, "shutdown_timeout", Duration, Duration(8))
        if shutdown > 9:
            self.fail(f"{key}.shutdown_timeout", "at most 9s (systemd's stop timeout leaves 10s)", shutdown)
        return DaemonSettings(
            state_dir=state_dir,
            socket=socket,
            log_level=self.choice(raw, key, "log_level", LOG_LEVELS, "info"),
            ingest_interval=self.positive(raw, key, "ingest_interval", Duration, Duration(2)),
            sql_timeout=self.positive(raw, key, "sql_timeout", Duration, Duration(10)),
            sql_max_rows=self.positive(raw, key, "sql_max_rows", int, 10_000),
            shutdown_timeout=shutdown,
            retention=self.retention(raw, key, "retention", 30),
            metrics_retention=self.retention(raw, key, "metrics_retention", 400),
        )

    def retention(self, raw: dict, key: str, name: str, default_days: int) -> Duration:
        # At least an hour: a bare number is seconds, and `retention = 30` must not empty the store.
        value = self.value(raw, key, name, Duration, Duration(default_days * 86400))
        if value < 3600:
            self.fail(f"{key}.{name}", "a duration of at least 1h, such as \"30d\"", value)
        return value

    def model(self, raw: Any, key: str, state_dir: Path) -> ModelConfig:
        if not isinstance(raw, dict):
            self.fail(key, "a table", raw)
        self.table(raw, key, {"name", "task", "predictions", "labels", "reference", "target", "features",
                              "checks"})
        name = self.value(raw, key, "name", str)
        if not MODEL_NAME.match(name):
            self.fail(f"{key}.name", "lower-case letters, digits and _ starting with a letter (max 63)", name)
        features_raw = raw.get("features", {})
        if not isinstance(features_raw, dict):
            self.fail(f"{key}.features", "a table of feature name = type", features_raw)
        features: dict[str, str] = {}
        for fname, ftype in features_raw.items():
            fkey = f"{key}.features.{fname}"
            if not FEATURE_NAME.match(fname):
                self.fail(fkey, "a feature name of letters, digits and _", raw=repr(fname))
            if not isinstance(ftype, str) or ftype.lower() not in FEATURE_TYPES:
                self.fail(fkey, "one of " + ", ".join(sorted(FEATURE_TYPES)), ftype)
            features[fname] = FEATURE_TYPES[ftype.lower()]
        return ModelConfig(
            name=name,
            task=self.choice(raw, key, "task", TASKS, "classification"),
            predictions=self.path_value(raw, key, "predictions", state_dir, required=True),
            labels=self.path_value(raw, key, "labels", state_dir),
            reference=self.path_value(raw, key, "reference", state_dir),
            target=self.value(raw, key, "target", str, "label"),
            features=features,
            checks=self.checks(raw.get("checks", {}), f"{key}.checks", "model"),
        )

    def checks(self, raw: Any, key: str, scope: str) -> tuple[CheckConfig, ...]:
        if not isinstance(raw, dict):
            self.fail(key, "a table of check name = settings", raw)
        registry = checks.all_checks()
        fitting = sorted(n for n, s in registry.items() if s.scope == scope)
        out = []
        for name, stanza in raw.items():
            ckey = f"{key}.{name}"
            spec = registry.get(name)
            if spec is None:
                self.fail(ckey, "a known check: " + ", ".join(fitting), raw="an unknown check")
            if spec.scope != scope:
                where = "[[models]] checks" if spec.scope == "model" else "[host.checks]"
                self.fail(ckey, f"a {scope} check ({', '.join(fitting)}); {name!r} belongs under {where}",
                          raw=f"the {spec.scope} check {name!r}")
            if not isinstance(stanza, dict):
                self.fail(ckey, "a table of settings", stanza)
            if stanza.get("enabled", True) is False:
                continue
            out.append(self.check(stanza, ckey, spec))
        return tuple(out)

    def check(self, raw: dict, key: str, spec: CheckSpec) -> CheckConfig:
        hints = typing.get_type_hints(spec.settings)
        fields = {f.name: f for f in spec.setting_fields()}
        self.table(raw, key, {"interval", "enabled", *fields})
        self.value(raw, key, "enabled", bool, True)
        interval = self.positive(raw, key, "interval", Duration, Duration(spec.default_interval))
        values = {}
        for name, f in fields.items():
            kind = _plain_type(hints[name])
            default = f.default
            if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            value = self.value(raw, key, name, kind, default)
            if kind in (float, int, Duration) and value is not None and value < 0:
                self.fail(f"{key}.{name}", "a value of zero or more", value)
            values[name] = value
        try:
            settings = spec.settings(**values)
        except ValueError as exc:  # a check's own rules (__post_init__) speak through here
            message = str(exc)
            if ", found " in message:  # it already says what it found
                raise ConfigError(self.path, key, message) from None
            self.fail(key, message, raw="settings that do not fit together")
        self.ordered_thresholds(key, settings)
        return CheckConfig(spec.name, interval, settings)

    def ordered_thresholds(self, key: str, settings: Any) -> None:
        """warn must come before crit: `x_warn <= x_crit` and `warn_x <= crit_x` pairs."""
        names = {f.name for f in dataclasses.fields(settings)}
        for warn_name, crit_name in _threshold_pairs(names):
            warn, crit = getattr(settings, warn_name), getattr(settings, crit_name)
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (warn, crit))
            if numbers and warn > crit:
                self.fail(f"{key}.{warn_name}", f"a value not above {crit_name} ({crit:g})", warn)


def _threshold_pairs(names: set[str]) -> Iterator[tuple[str, str]]:
    for name in sorted(names):
        if name.endswith("_warn") and name[:-5] + "_crit" in names:
            yield name, name[:-5] + "_crit"
        if name.startswith("warn_") and "crit_" + name[5:] in names:
            yield name, "crit_" + name[5:]


def _plain_type(hint: Any) -> Any:
    """`float | None` -> float; settings fields use only simple types."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint
