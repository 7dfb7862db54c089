"""Config validation: every bad config names the file, the key, what was expected and what was found."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import ConfigError, find_config, load_config
from support import BASE_CONFIG, REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "modeltop.toml"
    path.write_text(text)
    return path


def test_reference_config_is_valid_and_describes_the_demo_models():
    config = load_config(REPO / "config.toml")
    assert [m.name for m in config.models] == ["churn", "diabetes"]
    assert config.model("churn").features["support_calls"] == "BIGINT"
    assert config.model("churn").checks[0].settings.warn_after == 30.0
    assert [c.name for c in config.host_checks] == ["host", "gpu"]
    assert [c.name for c in config.model("churn").checks] == [
        "freshness", "service", "drift", "multivariate_drift", "performance", "prediction_drift", "label_drift",
        "segments", "fairness", "data_quality", "process"]


def test_relative_paths_resolve_against_the_state_dir(tmp_path):
    config = load_config(write(tmp_path, BASE_CONFIG), state_dir=tmp_path / "st")
    assert config.daemon.state_dir == (tmp_path / "st").resolve()
    assert config.model("churn").predictions == (tmp_path / "st").resolve() / "spool/churn/predictions"
    assert config.daemon.socket == (tmp_path / "st").resolve() / "modeltop.sock"


BAD_CONFIGS = [
    # (what is wrong, TOML, key named in the message, words that must appear)
    ("unknown top-level key", BASE_CONFIG + "\n[alerts]\nx = 1\n", "alerts", ["unknown key"]),
    ("unknown daemon key", BASE_CONFIG.replace('log_level = "debug"', 'log_levl = "debug"'),
     "daemon.log_levl", ["unknown key", "log_level"]),
    ("bad log level", BASE_CONFIG.replace('log_level = "debug"', 'log_level = "loud"'),
     "daemon.log_level", ["one of debug, info, warning, error", "'loud'"]),
    ("bad duration", BASE_CONFIG.replace('warn_after = "60s"', 'warn_after = "5 minutes"'),
     "models[0].checks.freshness.warn_after", ["duration", "'5 minutes'"]),
    ("string where a number belongs", BASE_CONFIG.replace('[host.checks.host]\ninterval = "1s"',
                                                          '[host.checks.host]\ninterval = "1s"\nmemory_warn = "high"'),
     "host.checks.host.memory_warn", ["a number", "'high' (string)"]),
    ("unknown check", BASE_CONFIG.replace("[models.checks.freshness]", "[models.checks.driftt]"),
     "models[0].checks.driftt", ["unknown check", "freshness"]),
    ("host check under a model", BASE_CONFIG + '\n[models.checks.host]\ninterval = "5s"\n',
     "models[0].checks.host", ["belongs under [host.checks]"]),
    ("missing model name", BASE_CONFIG.replace('name = "churn"\n', ""),
     "models[0].name", ["required"]),
    ("bad model name", BASE_CONFIG.replace('name = "churn"', 'name = "Churn Model"'),
     "models[0].name", ["lower-case", "'Churn Model'"]),
    ("duplicate model", BASE_CONFIG + '\n[[models]]\nname = "churn"\npredictions = "p"\n',
     "models[1].name", ["not used by another model"]),
    ("unknown feature type", BASE_CONFIG.replace('contract = "string"', 'contract = "text"'),
     "models[0].features.contract", ["one of", "'text'"]),
    ("warn above crit", BASE_CONFIG.replace('crit_after = "1h"', 'crit_after = "30s"'),
     "models[0].checks.freshness.warn_after", ["not above crit_after"]),
    ("negative interval",
     BASE_CONFIG.replace('[host.checks.host]\ninterval = "1s"', "[host.checks.host]\ninterval = -1"),
     "host.checks.host.interval", ["duration"]),
    ("boolean as a number", BASE_CONFIG.replace('[host.checks.host]\ninterval = "1s"',
                                                '[host.checks.host]\ninterval = "1s"\ndisk_crit = true'),
     "host.checks.host.disk_crit", ["a number", "True (boolean)"]),
    ("models not an array", 'models = "churn"\n' + BASE_CONFIG.split("[[models]]")[0],
     "models", ["array of tables"]),
    ("unknown task", BASE_CONFIG.replace('name = "churn"', 'name = "churn"\ntask = "ranking"'),
     "models[0].task", ["classification, regression", "'ranking'"]),
    ("empty predictions path", BASE_CONFIG.replace('predictions = "spool/churn/predictions"', 'predictions = ""'),
     "models[0].predictions", ["non-empty path"]),
]


@pytest.mark.parametrize(("text", "key", "words"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_names_file_key_expected_and_found(tmp_path, text, key, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: expected "), message
    for word in words:
        assert word in message, message


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    path = write(tmp_path, "[daemon\nlog_level = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "line 1" in str(info.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(info.value) and "no such file" in str(info.value)


def test_search_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELTOP_CONFIG", raising=False)
    (tmp_path / "config.toml").write_text(BASE_CONFIG)
    assert find_config(None) == Path("config.toml")
    monkeypatch.setenv("MODELTOP_CONFIG", "/elsewhere.toml")
    assert find_config(None) == Path("/elsewhere.toml")
    assert find_config("explicit.toml") == Path("explicit.toml")


def test_check_config_command_exit_codes(tmp_path):
    good, bad = write(tmp_path, BASE_CONFIG), tmp_path / "bad.toml"
    bad.write_text(BASE_CONFIG.replace('interval = "1s"', 'interval = "soon"', 1))
    run = [sys.executable, "-m", "daemon.cli", "check-config"]
    ok = subprocess.run([*run, str(good)], capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0 and "ok (1 models, 2 checks" in ok.stdout
    failed = subprocess.run([*run, str(bad)], capture_output=True, text=True, cwd=REPO)
    assert failed.returncode == 2
    assert f"{bad}: host.checks.host.interval: expected a duration" in failed.stderr
    assert "Traceback" not in failed.stderr
