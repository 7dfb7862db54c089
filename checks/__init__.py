"""Monitoring logic as pure functions: data and settings in, metrics and a status out.

Checks never touch the store, the clock or the network (DESIGN.md §4); the daemon gathers their inputs.
Each module registers itself by name (DESIGN.md §5); importing this package loads every built-in check.
"""

# Built-in checks register themselves on import: adding a check is one file plus one line here.
from checks import data_quality as _data_quality  # noqa: E402,F401
from checks import drift as _drift  # noqa: E402,F401
from checks import fairness as _fairness  # noqa: E402,F401
from checks import freshness as _freshness  # noqa: E402,F401
from checks import gpu as _gpu  # noqa: E402,F401
from checks import host as _host  # noqa: E402,F401
from checks import label_drift as _label_drift  # noqa: E402,F401
from checks import labels as _labels  # noqa: E402,F401
from checks import multivariate_drift as _multivariate_drift  # noqa: E402,F401
from checks import performance as _performance  # noqa: E402,F401
from checks import prediction_drift as _prediction_drift  # noqa: E402,F401
from checks import process as _process  # noqa: E402,F401
from checks import segments as _segments  # noqa: E402,F401
from checks import service as _service  # noqa: E402,F401
from checks.base import CheckResult, CheckSpec, Duration, Metric, Status, all_checks, get, register

__all__ = ["CheckResult", "CheckSpec", "Duration", "Metric", "Status", "all_checks", "get", "register"]
