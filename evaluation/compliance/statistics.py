"""Estimates with 95% confidence intervals, from the ecosystem's tools.

- proportions (prevalence, sensitivity, specificity, PPV, NPV): Wilson score intervals
  (``scipy.stats.binomtest(...).proportion_ci(method="wilson")``);
- AUROC: scikit-learn's ``roc_auc_score`` for the estimate; a stratified bootstrap (positives and negatives
  resampled separately, ``scipy.stats.bootstrap`` with two samples, BCa) of the Mann-Whitney statistic
  (``scipy.stats.mannwhitneyu``) for the interval;
- Brier score (scikit-learn): a paired bootstrap of the studies (BCa); expected calibration error: the paired
  bootstrap's percentile interval, stretched to hold the estimate (the statistic is biased upward);
- likelihood ratios: the table's own ratio (none where infinite), with the log-method interval of Simel, Samsa
  and Matchar (J Clin Epidemiol 1991), 0.5 added to every cell of a table that has an empty one.

An estimate that the data cannot give (no positives for a sensitivity, one class for an AUROC) is ``None``
with its bounds, never a number that only looks like one.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import brier_score_loss, roc_auc_score

from clinical_mm.core.metrics import expected_calibration_error, expected_calibration_errors, wilson_interval

__all__ = [
    "CONFIDENCE",
    "Estimate",
    "auroc",
    "binary_metrics",
    "brier",
    "calibration_error",
    "holm",
    "likelihood_ratios",
    "proportion",
]

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval; all three ``None`` when the data cannot give it."""

    estimate: float | None
    lower: float | None
    upper: float | None

    @classmethod
    def undefined(cls) -> Estimate:
        return cls(None, None, None)

    def to_dict(self) -> dict[str, float | None]:
        def r(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else round(float(x), 4)

        return {"estimate": r(self.estimate), "lower": r(self.lower), "upper": r(self.upper)}


def proportion(successes: int, trials: int) -> Estimate:
    """``successes / trials`` with its Wilson score interval."""
    if trials <= 0:
        return Estimate.undefined()
    return Estimate(successes / trials, *wilson_interval(successes, trials, CONFIDENCE))


def _mann_whitney_auc(pos: np.ndarray, neg: np.ndarray, axis: int = -1) -> np.ndarray:
    u = stats.mannwhitneyu(pos, neg, axis=axis, method="asymptotic", use_continuity=False).statistic
    return np.asarray(u) / (pos.shape[axis] * neg.shape[axis])


def _bootstrap(data: tuple[np.ndarray, ...], statistic: object, point: float, *, paired: bool, seed: int,
               n_resamples: int, methods: tuple[str, ...] = ("BCa", "percentile"),
               widen: bool = False) -> tuple[float, float] | None:
    """The first of ``methods`` (BCa, percentile) that gives an interval of ``statistic`` (a vectorised function
    of the samples) with finite bounds, some width, and the point estimate inside it; with ``widen``, the
    percentile interval stretched to hold the estimate instead. ``None`` when none does: a degenerate bootstrap
    (every resample the same, as at an AUROC of 1 on few studies) gives no interval, and a goal on its bound is
    not judged rather than judged on a bound that only looks like one."""
    for method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DegenerateDataWarning: the next method is tried
            res = stats.bootstrap(data, statistic, paired=paired, vectorized=True, n_resamples=n_resamples,
                                  confidence_level=CONFIDENCE, method=method, rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            continue
        if widen:
            return min(low, point), max(high, point)
        if low <= point <= high:
            return low, high
    return None


def auroc(labels: np.ndarray, scores: np.ndarray, *, seed: int = 0, n_resamples: int = 1000) -> Estimate:
    """AUROC with a stratified bootstrap interval; undefined when one class is missing."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.all() or not y.any():
        return Estimate.undefined()
    point = float(roc_auc_score(y, s))
    pos, neg = s[y], s[~y]
    if len(pos) < 2 or len(neg) < 2:
        return Estimate(point, None, None)
    ci = _bootstrap((pos, neg), _mann_whitney_auc, point, paired=False, seed=seed, n_resamples=n_resamples)
    return Estimate(point, *(ci or (None, None)))


def calibration_error(labels: np.ndarray, probs: np.ndarray, *, seed: int = 0, n_resamples: int = 1000) -> Estimate:
    """ECE (10 equal-width bins) with a paired bootstrap interval."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    if len(y) == 0:
        return Estimate.undefined()
    point = expected_calibration_error(y, p)
    if len(y) < 2:
        return Estimate(point, None, None)
    # ECE is biased upward under resampling (every bin's noise adds): BCa over-corrects and can leave the estimate
    # above its upper bound. The percentile interval, stretched down to the estimate where it lies above it, keeps
    # the upper bound (what a goal judges) on the cautious side.
    ci = _bootstrap((y, p), lambda a, b, axis=-1: expected_calibration_errors(a, b, axis=axis), point, paired=True, seed=seed,
                    n_resamples=n_resamples, methods=("percentile",), widen=True)
    return Estimate(point, *(ci or (None, None)))


def brier(labels: np.ndarray, probs: np.ndarray, *, seed: int = 0, n_resamples: int = 1000) -> Estimate:
    """Brier score (mean squared error of the probability) with a paired bootstrap interval."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    if len(y) == 0:
        return Estimate.undefined()
    point = float(brier_score_loss(y.astype(int), p, labels=[0, 1]))
    if len(y) < 2:
        return Estimate(point, None, None)
    ci = _bootstrap((y, p), lambda a, b, axis=-1: np.mean((b - a) ** 2, axis=axis), point, paired=True, seed=seed,
                    n_resamples=n_resamples)
    return Estimate(point, *(ci or (None, None)))


def likelihood_ratios(tp: int, fn: int, fp: int, tn: int) -> tuple[Estimate, Estimate]:
    """LR+ = sens / (1 - spec) and LR- = (1 - sens) / spec from the table as it is (``None`` where infinite: a
    specificity or sensitivity of 1), with log-method intervals from the table with 0.5 added to every cell when
    one is empty; undefined without positives or negatives."""
    if tp + fn == 0 or fp + tn == 0:
        return Estimate.undefined(), Estimate.undefined()
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    sens, spec = tp / (tp + fn), tn / (fp + tn)
    raw = (sens / (1 - spec) if spec < 1 else None, (1 - sens) / spec if spec > 0 else None)
    a, b, c, d = (float(x) for x in (tp, fn, fp, tn))
    if min(a, b, c, d) == 0:
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    cs, cp = a / (a + b), d / (c + d)
    out = []
    for point, ratio, se in ((raw[0], cs / (1 - cp), math.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))),
                             (raw[1], (1 - cs) / cp, math.sqrt(1 / b - 1 / (a + b) + 1 / d - 1 / (c + d)))):
        low, high = ratio * math.exp(-z * se), ratio * math.exp(z * se)
        if point is None:
            out.append(Estimate.undefined())
        else:  # the corrected table's interval, widened to hold the raw estimate if the correction moved it out
            out.append(Estimate(point, min(low, point), max(high, point)))
    return out[0], out[1]


def binary_metrics(labels: np.ndarray, predicted: np.ndarray) -> dict[str, Estimate]:
    """Sensitivity, specificity, PPV, NPV (Wilson) and the likelihood ratios at one operating point."""
    y = np.asarray(labels).astype(bool)
    r = np.asarray(predicted).astype(bool)
    tp, fn = int((y & r).sum()), int((y & ~r).sum())
    fp, tn = int((~y & r).sum()), int((~y & ~r).sum())
    lr_pos, lr_neg = likelihood_ratios(tp, fn, fp, tn)
    return {"sensitivity": proportion(tp, tp + fn), "specificity": proportion(tn, tn + fp),
            "ppv": proportion(tp, tp + fp), "npv": proportion(tn, tn + fn),
            "lr_positive": lr_pos, "lr_negative": lr_neg}


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` (family-wise error over all of them), in their order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
