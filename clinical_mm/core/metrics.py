"""Metrics on numpy arrays: AUROC, F1, expected calibration error, and the Wilson interval of a proportion (the only
one that loads scipy, when it is called)."""

from __future__ import annotations

import numpy as np

__all__ = ["auroc", "expected_calibration_error", "expected_calibration_errors", "f1_score", "precision_recall_f1", "sensitivity_specificity", "sigmoid", "wilson_interval"]


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """The logistic function, without overflow for large negative inputs."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64))))


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tie correction); NaN when one class is missing."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def f1_score(labels: np.ndarray, predicted: np.ndarray) -> float:
    """F1 of binary predictions; 1.0 when there are no positives and none are predicted."""
    y = np.asarray(labels).astype(bool)
    p = np.asarray(predicted).astype(bool)
    tp = int((y & p).sum())
    denom = int(y.sum()) + int(p.sum())
    return 1.0 if denom == 0 else 2.0 * tp / denom


def precision_recall_f1(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    """The counts with precision, recall and F1 (0.0 where undefined)."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (scipy's ``binomtest``); ``trials`` must be at least 1."""
    from scipy import stats  # scipy loads only where an interval is asked for

    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def sensitivity_specificity(labels: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    y = np.asarray(labels).astype(bool)
    p = np.asarray(predicted).astype(bool)
    sens = float((y & p).sum() / max(1, y.sum()))
    spec = float((~y & ~p).sum() / max(1, (~y).sum()))
    return sens, spec


def expected_calibration_errors(labels: np.ndarray, probs: np.ndarray, bins: int = 10, axis: int = -1) -> np.ndarray:
    """ECE along ``axis`` of equally shaped arrays (one per row: a bootstrap's resamples at once), over equal-width
    probability bins [lo, hi), the last closed: per bin, its share of the predictions times the gap between their
    mean probability and the observed frequency (``|sum p - sum y| / n`` over the bin)."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece: np.ndarray | float = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (p >= lo) & ((p < hi) if hi < 1.0 else (p <= hi))
        ece = ece + np.abs((p * sel).sum(axis=axis) - (y * sel).sum(axis=axis)) / p.shape[axis]
    return np.asarray(ece)


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """ECE over equal-width probability bins, over every value (:func:`expected_calibration_errors`)."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(probs, dtype=np.float64).ravel()
    return float(expected_calibration_errors(y, p, bins)) if len(p) else 0.0
