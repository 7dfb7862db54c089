"""Statistics for drift: the reference profile (built once per model version) and the univariate comparisons.

Pure numpy; scipy is imported lazily, only for the p-value distributions, because `import scipy.stats` takes
about a second and the CLI imports `checks`.
"""

from checks.stats.profile import CategoricalReference, NumericReference, ReferenceProfile, kind_of_type
from checks.stats.univariate import (
    CategoricalComparison,
    NumericComparison,
    benjamini_hochberg,
    compare_categorical,
    compare_numeric,
)

__all__ = [
    "CategoricalComparison", "CategoricalReference", "NumericComparison", "NumericReference", "ReferenceProfile",
    "benjamini_hochberg", "compare_categorical", "compare_numeric", "kind_of_type",
]
