"""Metric functions against hand-computed values."""

from __future__ import annotations

import math

import numpy as np

from clinical_mm.core.metrics import auroc, expected_calibration_error, f1_score


def test_when_scores_separate_perfectly_then_auroc_is_one() -> None:
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0


def test_when_scores_tie_then_half_credit() -> None:
    assert auroc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75


def test_when_one_class_missing_then_nan() -> None:
    assert math.isnan(auroc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_f1_and_ece_values() -> None:
    assert f1_score(np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0])) == 0.5
    assert f1_score(np.array([0, 0]), np.array([0, 0])) == 1.0
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == 0.0
    assert abs(expected_calibration_error(np.array([1, 1]), np.array([0.75, 0.75])) - 0.25) < 1e-9
