"""multivariate_drift: has the joint distribution of the inputs moved, even where no single feature did?

The drift check (checks/drift.py) compares each feature on its own. A change in how features go together
(two features whose correlation flips from +0.8 to -0.8, a mix of customer types that changes while each
column's distribution stays) leaves every one of its tests quiet. Two detectors look at whole rows instead:

    domain classifier   a small gradient-boosted classifier (scikit-learn's HistGradientBoostingClassifier:
                        50 trees of 8 leaves, at least 50 rows a leaf) learns to tell window rows (1) from
                        reference rows (0). Its held-out ROC-AUC is 0.5 when the sets are alike and grows with
                        any difference it can use, joint or marginal. When it alarms, features are ranked by the
                        AUC lost when each is shuffled in the held-out half (predictions only, no refit), and
                        the reason names those that separate the sets.
    PCA reconstruction  principal components fitted on half the reference keep `pca_variance` of its variance;
    error               a row's error is its distance to that subspace, in reference standard deviations. Rows
                        that break the reference's correlations land off the subspace and the window's mean
                        error grows; it is compared with the errors of the reference's other half.

Both sides are sampled to the same n = min(sample_size, window rows, reference rows), seeded, so a run costs
the same whatever the traffic. Encoding, fitted on the reference only: for the classifier numeric values as
they are (the booster routes missing values itself) and each categorical as codes of its `max_categories`
most frequent reference categories plus one code for any other (a native categorical split); for PCA numeric
values imputed with the reference median and standardised with its mean and std, categoricals one-hot over
the same categories plus the pooled one, each group scaled to a total variance of 1 so every feature weighs
the same.

Decision rule, the same at every sample size; the status is the worse of the two detectors:
  domain classifier  warn when AUC >= auc_warn, crit when AUC >= auc_crit, each only if its p-value <= alpha;
  PCA                warn when the window's mean error reaches reference + max(pca_increase_warn * reference,
                     4 se), crit likewise with pca_increase_crit, each only if a one-sided Mann-Whitney test of
                     the window's per-row errors against the held-out reference's has p <= alpha. se is the
                     standard error of the difference of the means, sd(held-out errors) * sqrt(1/n + 1/n_ref).
As in drift, the effect size says the change matters and the test says it is not noise: the AUC of two
samples of 5 000 rows differs from 0.5 by chance by +-0.007 (sd), but a 0.52 that is real is no reason to wake
anyone; at 1 000 rows chance alone reaches 0.55.

The classifier's p-value. The AUC is cross-fitted in two halves: each half trains a model that scores the
other, and the AUC is the mean of the two. When nothing changed, each half's AUC is a Mann-Whitney statistic of
scores that do not depend on the label, with se0 = sqrt((n0 + n1 + 1) / (12 n0 n1)). The halves are not
independent (each model learns the chance differences of the half the other is tested on), and neither are
the folds of the usual 5-fold pooled AUC: its sd under no drift measured 1.27 times the Mann-Whitney se at
1 000 rows a side (200 windows), so its p-values would be optimistic (2 of 200 windows at p <= 0.001). The
p-value uses the se of one half, which bounds the se of the mean of two whatever their correlation: valid by
construction, and close to tight (no drift measured sd 0.0156 against the bound 0.0183 with 25 features,
0.0169 with 2). Two halves also cost two fits instead of five.

Config stanza (defaults):

    [models.checks.multivariate_drift]
    interval = "1h"
    window = "1h"                 # the provider reads the predictions with ts in the last hour...
    max_rows = 1000000            #   ...at most this many, the newest...
    sample_size = 5000            #   ...and samples them (and the reference) down to this many rows a side
    min_rows = 1000               # fewer rows in the window or the reference -> insufficient_data
    features = []                 # features to judge; empty = every feature the reference has
    alpha = 0.0001                # p-value at or below which a difference is not noise (each detector)
    auc_warn = 0.55               # domain classifier ROC-AUC: 0.5 = indistinguishable, 1 = disjoint
    auc_crit = 0.65
    pca_increase_warn = 0.05      # mean reconstruction error above the reference's by this share...
    pca_increase_crit = 0.25      #   ...and by 4 standard errors
    pca_variance = 0.9            # share of the reference's variance the principal components keep
    max_categories = 10           # per categorical: the most frequent reference categories, the rest pooled
    reference_max_rows = 20000    # the reference is sampled to this many rows (half fits PCA)
    threads = 1                   # OpenMP threads of the classifier
    seed = 0                      # every sample and split; the same data gives the same verdict

Why these defaults. Figures from simulated data, through `evaluate`: 25 features (18 numeric of the seven
shapes of tests/checks/test_drift_check.py, its five categoricals with 2 to 20 categories, and a pair of
standard normals a, b with correlation 0.8), references of 20 000 rows, windows drawn with other seeds; no
drift: 500 windows at n = 1 000 (20 references), 200 at 2 000 and 200 at 5 000 (10 references), and a
2-feature model (a normal and a 5-category feature) with 500 windows at 1 000 and 100 at 5 000; each signal 50
windows (5 references).
- auc_warn 0.55: no drift reads sd 0.0156 and at most 0.546 at n = 1 000 (2 features: 0.557), sd 0.010 and
  at most 0.532 at 2 000, sd 0.0071 and at most 0.518 at 5 000. At 1 000 rows the test gate binds (p <= alpha
  needs AUC >= 0.568); from about 2 000 rows the effect gate does. Signals at n = 5 000 / 1 000: the flipped
  correlation reads 0.85 / 0.82 (at least 0.74 / 0.73); correlation 0.8 -> 0.4 reads 0.57 / 0.54; a 0.5 sd
  mean shift of one feature 0.63 / 0.60 (all / 49 of 50 warn); a 0.25 sd shift 0.549 at 5 000 (26 of 50
  warn). One feature's quarter-sd shift is the drift check's to find (it flags 0.1 sd); this check warns when
  a classifier tells the sets apart clearly: 0.55 is what an ideal classifier reaches on a 0.18 sd shift of
  one normal feature (AUC = Phi(d / sqrt 2)), and what the booster reaches among 25 features on 0.25 sd.
- auc_crit 0.65: every flipped-correlation window reads 0.73 or more; a half-sd shift of one feature stays
  below (at most 0.637 at 5 000): one moved feature warns, a broken structure pages.
- pca_increase_warn 0.05 and the 4-se band: the mean error's chance change depends on the features. With 25,
  the relative change under no drift has sd 0.57% at n = 1 000 (at most 1.5%) and 0.27% at 5 000 (at most
  0.9%), so 5% is far outside the noise, and correlation 0.8 -> 0.4 of one pair reads +7.4% (every window warns
  at 1 000 rows, where the classifier sees only 0.54); 0.8 -> 0.6 reads +3.9% and AUC 0.53 at 5 000 rows and
  is let pass. With 2 features the per-row error is skewed (sd 1.7 times the mean) and the relative change has
  sd 5.5% at n = 1 000 (at most 14%), 2.7% at 5 000: there the 4-se band (about 22% at 1 000) decides, not the
  5%. A mean shift barely moves the error (+0.1% for 0.5 sd: the moved feature's own component reconstructs
  it); that is the classifier's part.
- pca_increase_crit 0.25: the flipped correlation reads +25% (n = 1 000: 22.7% to 27.4%); a quarter more error
  than the reference means the rows no longer fit the training data's structure.
- Mann-Whitney rather than a z-test on the mean: exact when nothing changed, whatever the shape of the errors.
  Measured p <= 0.05 / 0.01 in 5.0% / 0.6% of no-drift windows (25 features, n = 1 000), 6.4% / 1.0% (2
  features).
- alpha 0.0001: one test per detector per run, hourly. At 0.001 the bound above still allows one false alarm in
  a thousand runs near min_rows (six weeks hourly), and the 2-feature model did warn once in 500 windows at
  n = 1 000 (AUC 0.557, p = 0.0009); at 0.0001 none of the 1 500 no-drift windows did. It costs the signals
  above little: the half-sd shift still warns in 49 of 50 windows at 1 000 rows, and at 5 000 rows 49 of 50
  quarter-sd-shift windows have p <= 0.0001.
- min_rows 1000: below it the test gate rises fast (AUC 0.60 needed at 500 rows a side) and only large
  changes could be seen; as in drift.
- sample_size 5000: the cap sets the run time (below) and the noise (AUC sd 0.007, a seventh of the way to
  auc_warn); more rows buy power on small effects the effect gate ignores anyway.
- reference_max_rows 20000: 10 000 rows fit PCA (ample for the tens to hundreds of encoded columns) and
  10 000 held-out errors make the reference's own noise a small part of the comparison (1/10 000 against 1/n
  in se); the classifier draws its n reference rows from the same sample.
- pca_variance 0.9: keeps the strong directions (with 25 features, 24 components of 55 encoded columns), so the
  residual is where a pair of correlated features moves when their correlation changes; never all components,
  so there is always a residual.
- max_categories 10: categoricals beyond their ten most frequent values add columns and noise, rarely signal;
  a new or rare category still counts in the pooled column.
- threads 1: two threads are no faster at this size (below), and OpenMP threads on a busy host spin against
  other work: during development a 5-fold run at 1 000 rows once took 70 s with 2 threads on a loaded 2-core
  machine, work that takes 0.2-0.4 s single-threaded.
- interval 1h (window 1h): each hour's traffic is judged once; a run costs up to a second of CPU, which the
  daemon spends on its own one-thread executor for heavy checks, away from the cheap ones. `modeltop
  backfill` can replay it (windows on event time).

Run time, n = 5 000 a side, 25 features, on 2 cores (load about 1), 7 windows each: 0.22 s wall (0.19-0.29)
when nothing drifted; 0.80 s (0.78-1.08) when the classifier alarms and ranks the features (25 shuffled
copies of each 5 000-row held-out half, predicted in batches); threads = 2: 0.29 s and 0.82 s. Preparing the
20 000-row reference: 0.14 s, once per reference file; the first run also imports scikit-learn (about 1.5 s).

Inputs (the providers' contract; checks stay pure, DESIGN.md section 4):
- `multivariate_reference`: a MultivariateReference, or None when the model has no reference. Build it once
  per reference file with `prepare_reference(columns, kinds, settings, version)` (columns: name -> array;
  kinds: "numeric"/"categorical" or config type names) and keep it until the file or settings change.
- `multivariate_window`: a MultivariateWindow(columns, n_rows): each feature's window column (numeric: floats,
  NaN or masked for NULL; categorical: str, None for NULL), sampled or not (the check samples down to
  sample_size itself), and the window's row count.

Metrics (dims {} unless said): rows, sample_rows (n), auc, auc_pvalue, auc_drop (dims {"feature": name}; only
when the classifier alarms), pca_error, pca_error_reference, pca_increase, pca_pvalue, pca_band_upper (the
warn line: reference + max(pca_increase_warn * reference, 4 se)), pca_components.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from checks.base import CheckResult, CheckSpec, Duration, Metric, Status, format_p, register, worst
from checks.stats.profile import Kind, kind_of_type, masked_as_none

TOP_FEATURES = 3  # separating features named in the reason


@dataclass(frozen=True)
class MultivariateDriftSettings:
    window: Duration = Duration(3600)
    max_rows: int = 1_000_000
    min_rows: int = 1000
    sample_size: int = 5000
    features: tuple[str, ...] = ()
    alpha: float = 0.0001
    auc_warn: float = 0.55
    auc_crit: float = 0.65
    pca_increase_warn: float = 0.05
    pca_increase_crit: float = 0.25
    pca_variance: float = 0.9
    max_categories: int = 10
    reference_max_rows: int = 20_000
    threads: int = 1
    seed: int = 0


@dataclass(frozen=True)
class MultivariateWindow:
    """The `multivariate_window` input: each feature's window column (already sampled or not), and the
    window's row count before any sampling."""

    columns: Mapping[str, Any]
    n_rows: int


# -- encoding ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Encoder:
    """Turns feature columns into matrices, with every parameter taken from the reference.

    Two encodings, one per detector:
    - for the domain classifier (trees: invariant to monotone transforms) numeric values as they are, NaN for
      missing (the booster routes missing values itself), and categories as codes 0..K-1 of the reference's
      K most frequent categories, K for any other category, NaN for missing (a native categorical split);
    - for PCA numeric values imputed with the reference median and standardised with the reference mean and
      std; categories one-hot over the same K + one pooled column (other or missing), the group scaled so its
      total variance is 1 in the reference: each feature weighs the same in the principal components.
    """

    names: tuple[str, ...]
    kinds: tuple[Kind, ...]
    mean: Mapping[str, float]
    std: Mapping[str, float]
    median: Mapping[str, float]
    categories: Mapping[str, np.ndarray]  # str categories, most frequent first
    group_scale: Mapping[str, float]

    @classmethod
    def fit(cls, columns: Mapping[str, Any], kinds: Mapping[str, Kind], max_categories: int) -> Encoder:
        mean, std, median, cats, scale = {}, {}, {}, {}, {}
        for name in columns:
            if kinds[name] == "numeric":
                x = as_floats(columns[name])
                finite = x[np.isfinite(x)]
                mean[name] = float(finite.mean()) if finite.size else 0.0
                std[name] = float(finite.std()) if finite.size else 0.0
                median[name] = float(np.median(finite)) if finite.size else 0.0
            else:
                values, missing = as_strings(columns[name])
                uniq, counts = np.unique(values[~missing], return_counts=True)
                order = np.lexsort((uniq, -counts))[:max_categories]
                cats[name] = uniq[order]
                shares = np.append(counts[order], counts.sum() - counts[order].sum() + missing.sum()) / len(values)
                scale[name] = 1.0 / math.sqrt(max(1.0 - float((shares**2).sum()), 1e-12))
        return cls(tuple(columns), tuple(kinds[n] for n in columns), mean, std, median, cats, scale)

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([k == "categorical" for k in self.kinds])

    def codes(self, name: str, values: Any) -> np.ndarray:
        """Category codes as floats: 0..K-1 the reference's top categories, K any other, NaN missing."""
        strings, missing = as_strings(values)
        top = self.categories[name]
        uniq, inverse = np.unique(strings[~missing], return_inverse=True)
        lookup = {c: i for i, c in enumerate(top.tolist())}
        uniq_codes = np.array([lookup.get(u, len(top)) for u in uniq.tolist()], dtype=np.float64)  # distinct values
        out = np.full(strings.shape[0], np.nan)
        out[~missing] = uniq_codes[inverse.reshape(-1)]
        return out

    def classifier_matrix(self, columns: Mapping[str, Any]) -> np.ndarray:
        parts = [as_floats(columns[n]) if k == "numeric" else self.codes(n, columns[n])
                 for n, k in zip(self.names, self.kinds, strict=True)]
        x = np.column_stack(parts)
        x[~np.isfinite(x)] = np.nan
        return x

    def pca_matrix(self, columns: Mapping[str, Any]) -> np.ndarray:
        parts = []
        for name, kind in zip(self.names, self.kinds, strict=True):
            if kind == "numeric":
                x = as_floats(columns[name])
                x = np.where(np.isfinite(x), x, self.median[name])
                parts.append(((x - self.mean[name]) / (self.std[name] or 1.0))[:, None])
            else:
                codes = self.codes(name, columns[name])
                k = len(self.categories[name])
                codes = np.where(np.isnan(codes), k, codes).astype(np.int64)
                parts.append(np.eye(k + 1)[codes] * self.group_scale[name])
        return np.hstack(parts)


def as_floats(values: Any) -> np.ndarray:
    """A float64 array, NaN for None/masked entries (Arrow arrays, lists and masked arrays accepted)."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        values = values.to_numpy(zero_copy_only=False)
    if isinstance(values, np.ma.MaskedArray):
        return values.astype(np.float64).filled(np.nan)
    arr = np.asarray(values)
    if arr.dtype == object:
        arr = np.where(np.equal(arr, None), np.nan, arr)
    return arr.astype(np.float64)


def as_strings(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """(str array, missing mask): None, NaN and masked entries are missing; booleans read 'True'/'False'."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        values = values.to_numpy(zero_copy_only=False)
    arr = np.asarray(masked_as_none(values), dtype=object)
    missing = np.equal(arr, None) | np.not_equal(arr, arr)  # None, or NaN (the one value unequal to itself)
    strings = np.where(missing, "", arr).astype(str)
    return strings, np.asarray(missing, dtype=bool)


# -- the reference: encoder, classifier rows, PCA -----------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class PcaModel:
    """Principal components of the reference's first half; reconstruction errors of its second half."""

    center: np.ndarray  # column means of the fitting half
    components: np.ndarray  # (k, d) orthonormal rows
    explained: float  # share of the variance the k components keep
    held_out: np.ndarray = field(default_factory=lambda: np.empty(0))  # per-row errors of the other half

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def error_mean(self) -> float:
        return float(self.held_out.mean())

    @property
    def error_sd(self) -> float:
        return float(self.held_out.std(ddof=1)) if self.held_out.size > 1 else 0.0

    def errors(self, z: np.ndarray) -> np.ndarray:
        """Per-row reconstruction error: the Euclidean distance between a row and its projection on the
        components (in reference standard deviations)."""
        centred = z - self.center
        residual = centred - (centred @ self.components.T) @ self.components
        return np.sqrt(np.einsum("ij,ij->i", residual, residual))


def fit_pca(z: np.ndarray, variance: float, holdout: np.ndarray) -> PcaModel | None:
    """Keep the fewest components explaining `variance` of the total, and never all of them (the residual is
    what is measured); None when the rows span fewer than two dimensions."""
    if z.shape[0] < 2 or holdout.shape[0] < 2:
        return None
    center = z.mean(axis=0)
    _, s, vt = np.linalg.svd(z - center, full_matrices=False)
    rank = int((s > s[0] * 1e-8).sum()) if s.size and s[0] > 0 else 0  # a one-hot group spans one fewer
    if rank < 2:
        return None
    var = s**2
    ratio = np.cumsum(var) / var.sum()
    k = int(min(np.searchsorted(ratio, variance - 1e-12) + 1, rank - 1))
    model = PcaModel(center, vt[:k], float(ratio[k - 1]))
    return dataclasses.replace(model, held_out=model.errors(holdout))


@dataclass(frozen=True, eq=False)
class MultivariateReference:
    """What the check needs from the reference data, built once per reference file (`prepare_reference`)."""

    encoder: Encoder
    rows: np.ndarray  # the sampled reference rows, classifier-encoded (n_rows, features)
    pca: PcaModel | None
    n_rows: int  # rows kept (after the reference_max_rows sample)
    source_rows: int
    version: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return self.encoder.names


def prepare_reference(columns: Mapping[str, Any], kinds: Mapping[str, Kind | str],
                      settings: MultivariateDriftSettings, version: str | None = None) -> MultivariateReference:
    """Sample the reference (seeded, so every build is the same), fit the encoder on it, fit PCA on one half
    and measure the reconstruction error on the other. `kinds`: "numeric"/"categorical" or config type names."""
    kinds = {n: k if k in ("numeric", "categorical") else kind_of_type(k) for n, k in kinds.items()}
    names = [n for n in (settings.features or tuple(kinds)) if n in columns and n in kinds]
    source_rows = len(columns[names[0]]) if names else 0
    rng = np.random.default_rng(settings.seed)
    take = rng.permutation(source_rows)[:settings.reference_max_rows]
    sample = {n: _take(columns[n], take) for n in names}
    encoder = Encoder.fit(sample, kinds, settings.max_categories)
    rows = encoder.classifier_matrix(sample) if names else np.empty((0, 0))
    pca = None
    if names:
        z = encoder.pca_matrix(sample)
        half = z.shape[0] // 2
        pca = fit_pca(z[:half], settings.pca_variance, z[half:])
    return MultivariateReference(encoder, rows, pca, int(take.size), source_rows, version)


def _take(values: Any, rows: np.ndarray) -> Any:
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        values = values.to_numpy(zero_copy_only=False)
    if isinstance(values, np.ma.MaskedArray):
        return values[rows]
    return np.asarray(values, dtype=object if isinstance(values, list) else None)[rows]


# -- the domain classifier --------------------------------------------------------------------------------------

FOLDS = 2  # cross-fitting halves; see "the domain classifier's p-value" in the module docstring
# A small booster: 8-leaf trees with at least 50 rows a leaf learn interactions (a correlation that flips) but
# little noise. scikit-learn's default 31-leaf trees fit more noise among 25 features: a 0.25 sd shift of one
# feature read AUC 0.539 with them against 0.551 with these (5-fold, n = 5 000, 3 windows), in twice the time.
BOOSTER = {"max_iter": 50, "max_leaf_nodes": 8, "min_samples_leaf": 50, "learning_rate": 0.1, "early_stopping": False}
PERMUTATION_BATCH = 2_000_000  # values per permuted prediction batch (16 MB of float64)


@dataclass(frozen=True)
class ClassifierResult:
    auc: float  # mean of the held-out halves' AUCs
    pvalue: float
    fold_aucs: tuple[float, ...]
    scores: np.ndarray  # held-out scores, in the order of the input rows
    drops: Mapping[str, float]  # feature -> AUC lost when it is permuted (only when ranked)


def auc_of(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic on mid-ranks (ties count half), as roc_auc_score computes it."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n1 = int(labels.sum())
    n0 = labels.size - n1
    return float((ranks[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def auc_se(n0: int, n1: int) -> float:
    """Standard error of the AUC of scores that do not depend on the label (Mann-Whitney U under H0):
    sqrt((n0 + n1 + 1) / (12 n0 n1)); exact without ties, an upper bound with them."""
    return math.sqrt((n0 + n1 + 1) / (12 * n0 * n1))


def domain_classifier(x: np.ndarray, y: np.ndarray, categorical: np.ndarray, names: Sequence[str],
                      settings: MultivariateDriftSettings, rank: bool | None = None) -> ClassifierResult:
    """Cross-fitted AUC of a small gradient-boosted classifier telling the window (1) from the reference (0).

    Each half trains a model that scores the other half. Under "same distribution" each half's AUC is exactly
    a Mann-Whitney statistic of label-free scores; the halves are correlated (each model learns the chance
    differences of the half the other is tested on), so the p-value takes the se of one half, which bounds the
    se of their mean whatever the correlation. `rank`: also rank features by the AUC lost when each is
    permuted in the held-out half (None: only when the AUC passes auc_warn with p <= alpha).
    """
    from scipy.stats import norm
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    scores = np.empty(y.size)
    fitted, aucs, ses = [], [], []
    with threadpool_limits(settings.threads, user_api="openmp"):
        for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=settings.seed).split(x, y):
            model = HistGradientBoostingClassifier(**BOOSTER, random_state=settings.seed,
                                                   categorical_features=categorical if categorical.any() else None)
            model.fit(x[train], y[train])
            scores[test] = model.decision_function(x[test])
            aucs.append(auc_of(scores[test], y[test]))
            ses.append(auc_se(int((y[test] == 0).sum()), int(y[test].sum())))
            fitted.append((model, test))
        auc = float(np.mean(aucs))
        pvalue = float(norm.sf((auc - 0.5) / max(ses)))
        if rank is None:
            rank = _classifier_status(auc, pvalue, settings).severity > 0
        drops = _permutation_drops(fitted, x, y, names, auc, settings.seed) if rank else {}
    return ClassifierResult(auc, pvalue, tuple(aucs), scores, drops)


def _permutation_drops(fitted: list, x: np.ndarray, y: np.ndarray, names: Sequence[str], auc: float,
                       seed: int) -> dict[str, float]:
    """Each feature's drop in held-out AUC when its column is shuffled: the fold models are reused (predictions
    only, batched: one call scores many permuted copies), so ranking costs a fraction of the fits."""
    rng = np.random.default_rng(seed)
    n_features = x.shape[1]
    permuted = np.empty((n_features, y.size))
    for model, test in fitted:
        xt, yt = x[test], y[test]
        per_batch = max(1, PERMUTATION_BATCH // max(xt.size, 1))
        for first in range(0, n_features, per_batch):
            block = range(first, min(first + per_batch, n_features))
            copies = np.repeat(xt[None], len(block), axis=0)
            for i, j in enumerate(block):
                copies[i, :, j] = xt[rng.permutation(yt.size), j]
            permuted[block.start:block.stop, test] = model.decision_function(
                copies.reshape(-1, n_features)).reshape(len(block), -1)
    return {name: auc - float(np.mean([auc_of(permuted[j, t], y[t]) for _, t in fitted]))
            for j, name in enumerate(names)}


# -- PCA reconstruction error -----------------------------------------------------------------------------------

PCA_BAND_SE = 4.0  # the band reaches this many standard errors of the window's mean error above the reference's


@dataclass(frozen=True)
class PcaResult:
    error: float  # mean reconstruction error of the window rows
    reference: float  # mean reconstruction error of the held-out reference half
    increase: float  # error / reference - 1
    pvalue: float  # one-sided rank test: are the window's errors larger than the reference's?
    se: float  # standard error of error - reference when nothing changed
    components: int

    def line(self, increase: float) -> float:
        """The error at and above which the window is past `increase` and clear of the noise band."""
        return self.reference + max(increase * self.reference, PCA_BAND_SE * self.se)


def pca_compare(pca: PcaModel, z: np.ndarray) -> PcaResult:
    """The window's per-row errors against the held-out reference's: the relative increase of the mean, its
    standard error (sd * sqrt(1/n_window + 1/n_reference)) and a one-sided Mann-Whitney p-value (exact under
    "nothing changed" whatever the shape of the errors, which are skewed when there are few features)."""
    from scipy.stats import mannwhitneyu

    errors = pca.errors(z)
    error = float(errors.mean())
    pvalue = float(mannwhitneyu(errors, pca.held_out, alternative="greater", method="asymptotic").pvalue)
    ref = pca.error_mean
    increase = error / ref - 1 if ref > 0 else (math.inf if error > 0 else 0.0)
    se = pca.error_sd * math.sqrt(1 / errors.size + 1 / pca.held_out.size)
    return PcaResult(error, ref, increase, pvalue, se, pca.n_components)


# -- the check --------------------------------------------------------------------------------------------------

def settings_problem(s: MultivariateDriftSettings) -> str | None:
    """What is wrong with these settings beyond their types (which config validation checks), or None."""
    if not 0 < s.alpha <= 1:
        return f"alpha must be in (0, 1], not {s.alpha:g}"
    if not (0.5 <= s.auc_warn <= 1 and 0.5 <= s.auc_crit <= 1):
        return "auc_warn and auc_crit are ROC-AUC values between 0.5 (no separation) and 1"
    if not 0 < s.pca_variance < 1:
        return f"pca_variance is a share of the variance, in (0, 1), not {s.pca_variance:g}"
    if not 1 <= s.max_categories <= 250:
        return "max_categories must be between 1 and 250 (the classifier bins a category in one of 255 bins)"
    if s.min_rows < 2 * FOLDS:
        return f"min_rows must be at least {2 * FOLDS}"
    if min(s.max_rows, s.sample_size, s.reference_max_rows) < s.min_rows:
        return "max_rows, sample_size and reference_max_rows must each be at least min_rows"
    if s.threads < 1:
        return "threads must be at least 1"
    return None


def sample_rows(n_rows: int, n: int, seed: int) -> np.ndarray:
    """`n` of `n_rows` row indices, seeded: the same rows on every run with the same sizes."""
    if n >= n_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=n, replace=False))


def evaluate(inputs: Mapping[str, Any], settings: MultivariateDriftSettings) -> CheckResult:
    """inputs: `multivariate_reference` (MultivariateReference or None) and `multivariate_window`; see above."""
    problem = settings_problem(settings)
    if problem is not None:
        return CheckResult(Status.ERROR, f"bad multivariate_drift settings: {problem}")
    ref: MultivariateReference | None = inputs["multivariate_reference"]
    window: MultivariateWindow = inputs["multivariate_window"]
    if ref is None:
        return CheckResult(Status.INSUFFICIENT_DATA, "no reference data: set the model's `reference` to its "
                                                     "training data to check multivariate drift")
    unknown = [n for n in settings.features if n not in ref.names]
    if unknown:
        return CheckResult(Status.ERROR, f"multivariate_drift features not in the reference data: "
                                         f"{', '.join(unknown)} (it has {', '.join(ref.names) or 'none'})")
    if not ref.names:
        return CheckResult(Status.ERROR, "the reference data has none of the model's features")
    absent = [n for n in ref.names if n not in window.columns]
    if absent:
        return CheckResult(Status.ERROR, f"the multivariate_drift window lacks {', '.join(absent)}")
    rows = Metric("rows", float(window.n_rows))
    if window.n_rows < settings.min_rows:
        return CheckResult(Status.INSUFFICIENT_DATA,
                           f"only {window.n_rows} rows in the window (min_rows {settings.min_rows})", (rows,))
    if ref.n_rows < settings.min_rows:
        return CheckResult(Status.INSUFFICIENT_DATA,
                           f"the reference has only {ref.n_rows} rows (min_rows {settings.min_rows})", (rows,))
    given = len(window.columns[ref.names[0]])
    if given < settings.min_rows:
        return CheckResult(Status.INSUFFICIENT_DATA, f"the window sample holds only {given} rows (min_rows "
                                                     f"{settings.min_rows})", (rows,))
    n = min(settings.sample_size, given, ref.n_rows)
    picked = sample_rows(given, n, settings.seed)
    sampled = {name: _take(window.columns[name], picked) for name in ref.names}
    x = np.vstack([ref.rows[sample_rows(ref.n_rows, n, settings.seed + 1)], ref.encoder.classifier_matrix(sampled)])
    y = np.repeat(np.array([0, 1]), n)
    clf = domain_classifier(x, y, ref.encoder.categorical_mask, ref.names, settings)
    pca = pca_compare(ref.pca, ref.encoder.pca_matrix(sampled)) if ref.pca is not None else None
    statuses = (_classifier_status(clf.auc, clf.pvalue, settings), _pca_status(pca, settings))
    status = worst(list(statuses))
    return CheckResult(status, _reason(status, statuses, clf, pca, n, len(ref.names), settings),
                       tuple(_metrics(rows, n, clf, pca, settings)))


def _classifier_status(auc: float, pvalue: float, s: MultivariateDriftSettings) -> Status:
    if pvalue > s.alpha:
        return Status.OK
    return Status.CRIT if auc >= s.auc_crit else Status.WARN if auc >= s.auc_warn else Status.OK


def _pca_status(pca: PcaResult | None, s: MultivariateDriftSettings) -> Status:
    if pca is None or pca.pvalue > s.alpha:
        return Status.OK
    if pca.error >= pca.line(s.pca_increase_crit):
        return Status.CRIT
    return Status.WARN if pca.error >= pca.line(s.pca_increase_warn) else Status.OK


def _metrics(rows: Metric, n: int, clf: ClassifierResult, pca: PcaResult | None,
             s: MultivariateDriftSettings) -> list[Metric]:
    metrics = [rows, Metric("sample_rows", float(n)), Metric("auc", clf.auc), Metric("auc_pvalue", clf.pvalue)]
    metrics += [Metric("auc_drop", drop, {"feature": name}) for name, drop in clf.drops.items()]
    if pca is not None:
        metrics += [Metric("pca_error", pca.error), Metric("pca_error_reference", pca.reference),
                    Metric("pca_increase", pca.increase), Metric("pca_pvalue", pca.pvalue),
                    Metric("pca_band_upper", pca.line(s.pca_increase_warn)),
                    Metric("pca_components", float(pca.components))]
    return metrics


def separating_features(drops: Mapping[str, float], top: int = TOP_FEATURES) -> list[str]:
    """The features whose shuffling costs the classifier most AUC, most first: at least 0.01 (one shuffle of a
    feature the classifier ignores moves the AUC by up to ~0.009 at 2 000 rows a side) and at least a quarter
    of the largest drop."""
    ranked = sorted(drops.items(), key=lambda kv: -kv[1])
    floor = max(0.01, ranked[0][1] / 4) if ranked else 0.0
    return [name for name, drop in ranked if drop >= floor][:top]


def _reason(status: Status, statuses: tuple[Status, Status], clf: ClassifierResult, pca: PcaResult | None,
            n: int, features: int, s: MultivariateDriftSettings) -> str:
    clf_status, pca_status = statuses
    line = (f"crit at {s.auc_crit:.2f}" if clf_status is Status.CRIT else f"warn at {s.auc_warn:.2f}")
    clf_text = f"domain classifier AUC {clf.auc:.2f} ({line}, {format_p(clf.pvalue)})"
    top = separating_features(clf.drops)
    if top:
        clf_text += f", separating features: {', '.join(top)}"
    if pca is None:
        pca_text = "PCA not applicable (the encoded reference has fewer than two dimensions)"
    else:
        crit = pca_status is Status.CRIT
        line = pca.line(s.pca_increase_crit if crit else s.pca_increase_warn)
        pca_text = (f"PCA error {_num(pca.error)} vs {_num(pca.reference)} ({pca.increase:+.1%}, "
                    f"{'crit' if crit else 'warn'} at {_num(line)}, {format_p(pca.pvalue)})")
    head = "multivariate drift" if status.severity else "no multivariate drift"
    return f"{head} in {features} features ({n} rows vs {n} of the reference): {clf_text}; {pca_text}"


def _num(x: float) -> str:
    return f"{x:.3g}"


SPEC = register(
    CheckSpec(
        name="multivariate_drift",
        scope="model",
        settings=MultivariateDriftSettings,
        inputs=("multivariate_reference", "multivariate_window"),
        evaluate=evaluate,
        default_interval=3600.0,
        description="joint-distribution drift against the reference data: a domain classifier's AUC and PCA "
                    "reconstruction error",
        historical=True,
        heavy=True,
    )
)
