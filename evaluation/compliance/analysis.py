"""Every number of the evaluation report, from the model's outcomes on a test manifest: per flag, per subgroup,
calibration, report text, input handling. The result is ``results.json``; the HTML and PDF report and the model
card are drawn from it and from nothing else.

Subgroups are disaggregated by fairlearn's ``MetricFrame``. A group is *flagged* when its performance at the
operating thresholds, pooled over the flags (sensitivity over every positive finding of its studies, specificity
over every negative one), is below the rest of the studies by at least ``min_difference`` and significantly so: a
one-sided permutation test of the studies (``scipy.stats.permutation_test``; a study's findings move together),
its p-value adjusted by Holm's method over every group and metric compared. Groups with fewer than ``min_n``
studies are marked too small to judge and shown with their (wide) intervals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, equalized_odds_difference, equalized_odds_ratio
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import f1_score, roc_auc_score, roc_curve

from clinical_mm.evaluation.compliance.goals import Goals
from clinical_mm.evaluation.compliance.manifest import ATTRIBUTES, EvaluationManifest
from clinical_mm.evaluation.compliance.runner import StudyOutcome
from clinical_mm.evaluation.compliance.statistics import (
    Estimate,
    auroc,
    binary_metrics,
    brier,
    calibration_error,
    holm,
    proportion,
)
from clinical_mm.extraction.chexpert import RadiologyReportLabeler

__all__ = ["ATTRIBUTE_LABELS", "analyse"]

ATTRIBUTE_LABELS = {"sex": "Sex", "age_band": "Age band", "site": "Site", "manufacturer": "Manufacturer",
                    "view": "View"}
_PERMUTATIONS = 9999


class _Data:
    """The analysed studies as arrays: labels ``y``, probabilities ``p``, raised flags ``r`` (studies x flags)."""

    def __init__(self, flags: tuple[str, ...], outcomes: list[StudyOutcome]) -> None:
        self.flags = flags
        self.outcomes = [o for o in outcomes if o.refused is None]
        self.y = np.array([[o.row.labels[f] for f in flags] for o in self.outcomes], dtype=int).reshape(-1, len(flags))
        self.p = np.array([[o.probabilities[f] for f in flags] for o in self.outcomes], dtype=float).reshape(
            -1, len(flags))
        self.r = np.array([[int(f in o.raised) for f in flags] for o in self.outcomes], dtype=int).reshape(
            -1, len(flags))
        self.thresholds = self.outcomes[0].thresholds if self.outcomes else {}
        self.attributes = pd.DataFrame([{a: o.attributes.get(a, "unknown") for a in ATTRIBUTES}
                                        for o in self.outcomes], columns=list(ATTRIBUTES))


def _flag_metrics(y: np.ndarray, p: np.ndarray, r: np.ndarray, seed: int, n_resamples: int) -> dict[str, Estimate]:
    """Every metric of one flag on a set of studies."""
    positives = int(y.sum())
    return {"prevalence": proportion(positives, len(y)), "auroc": auroc(y, p, seed=seed, n_resamples=n_resamples),
            **binary_metrics(y, r), "ece": calibration_error(y, p, seed=seed, n_resamples=n_resamples),
            "brier": brier(y, p, seed=seed, n_resamples=n_resamples)}


def _flags_section(data: _Data, goals: Goals, seed: int, n_resamples: int,
                   tick: Callable[[], None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for j, flag in enumerate(data.flags):
        metrics = _flag_metrics(data.y[:, j], data.p[:, j], data.r[:, j], seed + j, n_resamples)
        out[flag] = {"n": len(data.y), "positives": int(data.y[:, j].sum()),
                     "threshold": data.thresholds.get(flag),
                     **{name: e.to_dict() for name, e in metrics.items()},
                     "goals": [g.judge(metrics[g.metric]) for g in goals.for_flag(flag)],
                     "roc": _roc(data.y[:, j], data.p[:, j])}
        tick()
    return out


def _roc(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    """The ROC curve's corners (scikit-learn), for the report's plot; empty with one class only."""
    if len(set(y.tolist())) < 2:
        return {"fpr": [], "tpr": []}
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=True)
    return {"fpr": [round(float(x), 4) for x in fpr], "tpr": [round(float(x), 4) for x in tpr]}


def _pooled_permutation_p(in_group: np.ndarray, hits: np.ndarray, totals: np.ndarray, seed: int) -> float:
    """One-sided p-value that the pooled rate ``sum hits / sum totals`` of the group is below the rest's, with the
    studies as the units permuted."""
    idx = np.arange(len(hits), dtype=float)

    def statistic(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        ia, ib = a.astype(int), b.astype(int)
        rate_a = hits[ia].sum(axis=axis) / np.maximum(totals[ia].sum(axis=axis), 1)
        rate_b = hits[ib].sum(axis=axis) / np.maximum(totals[ib].sum(axis=axis), 1)
        return np.asarray(rate_a - rate_b)

    res = stats.permutation_test((idx[in_group], idx[~in_group]), statistic, permutation_type="independent",
                                 alternative="less", n_resamples=_PERMUTATIONS, vectorized=True,
                                 rng=np.random.default_rng(seed))
    return float(res.pvalue)


def _subgroups(data: _Data, goals: Goals, seed: int, n_resamples: int,
               tick: Callable[[], None]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per attribute and group: n, positives per flag, every metric with its interval (fairlearn's MetricFrame
    over the study indices), the pooled tests against the rest; and the disparity summaries per attribute."""
    s = goals.subgroups
    n = len(data.y)
    idx = np.arange(n)
    tp = (data.y * data.r).sum(axis=1)
    pos = data.y.sum(axis=1)
    tn = ((1 - data.y) * (1 - data.r)).sum(axis=1)
    neg = (1 - data.y).sum(axis=1)
    groups: list[dict[str, Any]] = []
    tests: list[tuple[int, str, float, float, float]] = []  # (group index, metric, p, group rate, rest rate)
    disparities: dict[str, Any] = {}
    for a_i, attribute in enumerate(ATTRIBUTES):
        feature = data.attributes[attribute].astype(str).rename(attribute)
        metrics = {flag: (lambda ids, _, j=j: _flag_metrics(data.y[ids, j], data.p[ids, j], data.r[ids, j],
                                                            seed + j, n_resamples))
                   for j, flag in enumerate(data.flags)}
        frame = MetricFrame(metrics=metrics, y_true=idx, y_pred=idx, sensitive_features=feature)
        judged_groups = []
        for group, row in frame.by_group.iterrows():
            mask = (feature == group).to_numpy()
            size = int(mask.sum())
            entry: dict[str, Any] = {
                "attribute": attribute, "group": str(group), "n": size,
                "positives": {f: int(data.y[mask, j].sum()) for j, f in enumerate(data.flags)},
                "metrics": {f: {m: e.to_dict() for m, e in row[f].items()} for f in data.flags},
                "pooled": {"sensitivity": proportion(int(tp[mask].sum()), int(pos[mask].sum())).to_dict(),
                           "specificity": proportion(int(tn[mask].sum()), int(neg[mask].sum())).to_dict()},
                "too_small": size < s.min_n, "flagged": False, "reason": ""}
            if size < s.min_n:
                entry["reason"] = f"too small to judge (n={size} < {s.min_n})"
            elif size == n:
                entry["reason"] = "not tested: every study is in this group"
            elif n - size < s.min_n:
                entry["reason"] = f"not tested: the rest of the studies is too small to compare (n={n - size} < {s.min_n})"
            else:
                judged_groups.append(str(group))
                for metric, hits, totals in (("sensitivity", tp, pos), ("specificity", tn, neg)):
                    if totals[mask].sum() < s.min_positives or totals[~mask].sum() < s.min_positives:
                        kind = "positive" if metric == "sensitivity" else "negative"
                        entry.setdefault("untested", []).append(
                            f"{metric} not tested: fewer than {s.min_positives} {kind} findings in the group or the rest")
                        continue
                    p_value = _pooled_permutation_p(mask, hits, totals, seed + 101 * a_i + len(groups))
                    tests.append((len(groups), metric, p_value, hits[mask].sum() / totals[mask].sum(),
                                  hits[~mask].sum() / totals[~mask].sum()))
            groups.append(entry)
            tick()
        disparities[attribute] = _disparity(data, feature, judged_groups, s.min_positives)
    adjusted = holm([t[2] for t in tests])
    for (g, metric, p_value, rate, rest), p_adj in zip(tests, adjusted, strict=True):
        entry = groups[g]
        entry.setdefault("tests", {})[metric] = {"group": round(float(rate), 4), "rest": round(float(rest), 4),
                                                 "difference": round(float(rate - rest), 4),
                                                 "p_value": round(p_value, 5), "p_holm": round(p_adj, 5)}
        if p_adj < s.alpha and rest - rate >= s.min_difference:
            entry["flagged"] = True
            entry["reason"] = "; ".join(filter(None, [entry["reason"], (
                f"pooled {metric} {rate:.3f} vs {rest:.3f} in the rest (difference {rate - rest:+.3f}; one-sided "
                f"permutation p={p_value:.2g}, Holm-adjusted {p_adj:.2g} over {len(tests)} comparisons)")]))
    for entry in groups:
        notes = entry.pop("untested", [])
        if not entry["reason"]:
            entry["reason"] = "; ".join(["not significantly below the rest"] * bool(entry.get("tests")) + notes)
    return groups, {"comparisons": len(tests), "alpha": s.alpha, "min_difference": s.min_difference,
                    "min_n": s.min_n, "min_positives": s.min_positives, "by_attribute": disparities}


def _disparity(data: _Data, feature: pd.Series, judged: list[str], min_positives: int) -> dict[str, Any]:
    """Between-group differences and ratios of sensitivity, specificity and AUROC, and the equalized-odds worst
    case, over the groups large enough to judge (fairlearn)."""
    if len(judged) < 2:
        return {"groups": judged, "flags": {}}
    mask = feature.isin(judged).to_numpy()
    sub = feature[mask].reset_index(drop=True)
    ids = np.flatnonzero(mask)
    out: dict[str, Any] = {}
    for j, flag in enumerate(data.flags):
        y, r, p = data.y[ids, j], data.r[ids, j], data.p[ids, j]

        def _sens(a: np.ndarray, _: np.ndarray, y: np.ndarray = y, r: np.ndarray = r) -> float:
            e = binary_metrics(y[a], r[a])["sensitivity"].estimate
            return np.nan if e is None else float(e)  # 0.0 is the worst group, not a missing one

        def _spec(a: np.ndarray, _: np.ndarray, y: np.ndarray = y, r: np.ndarray = r) -> float:
            e = binary_metrics(y[a], r[a])["specificity"].estimate
            return np.nan if e is None else float(e)

        def _auc(a: np.ndarray, _: np.ndarray, y: np.ndarray = y, p: np.ndarray = p) -> float:
            return float(roc_auc_score(y[a], p[a])) if len(set(y[a].tolist())) == 2 else np.nan

        local = np.arange(len(ids))
        frame = MetricFrame(metrics={"sensitivity": _sens, "specificity": _spec, "auroc": _auc}, y_true=local,
                            y_pred=local, sensitive_features=sub)
        diff, ratio = frame.difference(method="between_groups"), frame.ratio(method="between_groups")
        row = {m: {"difference": _num(diff[m]), "ratio": _num(ratio[m]),
                   "worst_group": _worst(frame.by_group[m])} for m in ("sensitivity", "specificity", "auroc")}
        # equalized odds over the groups that have enough positives and negatives of this flag to give both rates
        # (fairlearn would take a group without positives for a true-positive rate of 0)
        both = [g for g in judged if min(int(y[(sub == g).to_numpy()].sum()),
                                         int((1 - y[(sub == g).to_numpy()]).sum())) >= min_positives]
        if len(both) >= 2:
            keep = sub.isin(both).to_numpy()
            row["equalized_odds_difference"] = _num(equalized_odds_difference(y[keep], r[keep],
                                                                              sensitive_features=sub[keep]))
            row["equalized_odds_ratio"] = _num(equalized_odds_ratio(y[keep], r[keep], sensitive_features=sub[keep]))
        else:
            row["equalized_odds_difference"] = row["equalized_odds_ratio"] = None
        out[flag] = row
    return {"groups": judged, "flags": out}


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return round(v, 4) if np.isfinite(v) else None


def _worst(series: pd.Series) -> str | None:
    values = pd.to_numeric(series, errors="coerce").dropna()
    return None if values.empty else str(values.idxmin())


def _calibration(data: _Data) -> dict[str, Any]:
    """Per flag, the reliability diagram's points (scikit-learn's ``calibration_curve``, 10 equal-width bins)."""
    out: dict[str, Any] = {}
    for j, flag in enumerate(data.flags):
        y, p = data.y[:, j], data.p[:, j]
        if len(y) == 0:
            out[flag] = {"bins": []}
            continue
        observed, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
        counts = np.bincount(np.searchsorted(np.linspace(0.0, 1.0, 11)[1:-1], p), minlength=10)  # as sklearn bins
        out[flag] = {"bins": [{"predicted": round(float(a), 4), "observed": round(float(b), 4)}
                              for a, b in zip(predicted, observed, strict=True)],
                     "counts": [int(c) for c in counts]}
    return out


def _report_text(data: _Data, has_reports: bool) -> dict[str, Any]:
    """Finding-level F1 of the drafts against the reference reports (both read by the report labeler: a flag is
    stated as its triage reading states it), and corpus BLEU (sacrebleu) and mean ROUGE-L F (rouge-score),
    overall and per site."""
    scored = [o for o in data.outcomes if o.row.reference.strip()]
    if not has_reports or not scored:
        return {"available": False, "reason": "the manifest has no reference reports (findings, impression)"}
    labeler = RadiologyReportLabeler()
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    drafts = [o.draft for o in scored]
    refs = [o.row.reference for o in scored]
    stated_d = np.array([[s[f] for f in data.flags] for s in map(labeler.stated_present, drafts)], dtype=int)
    stated_r = np.array([[s[f] for f in data.flags] for s in map(labeler.stated_present, refs)], dtype=int)
    rouge = np.array([scorer.score(r, d)["rougeL"].fmeasure for d, r in zip(drafts, refs, strict=True)])
    sites = np.array([o.attributes.get("site", "unknown") for o in scored])

    def f1(truth: np.ndarray, stated: np.ndarray) -> float | None:
        """F1 of stated findings; None where neither the references nor the drafts state any (undefined)."""
        return None if not truth.any() and not stated.any() else round(float(f1_score(truth, stated)), 4)

    def block(mask: np.ndarray) -> dict[str, Any]:
        d = [t for t, m in zip(drafts, mask, strict=True) if m]
        r = [t for t, m in zip(refs, mask, strict=True) if m]
        return {"n": int(mask.sum()),
                "f1": {f: f1(stated_r[mask, j], stated_d[mask, j]) for j, f in enumerate(data.flags)},
                "micro_f1": f1(stated_r[mask].ravel(), stated_d[mask].ravel()),
                "bleu": round(float(BLEU().corpus_score(d, [r]).score), 2),
                "rouge_l": round(float(rouge[mask].mean()), 4)}

    return {"available": True, "skipped_without_reference": len(data.outcomes) - len(scored),
            "overall": block(np.ones(len(drafts), dtype=bool)),
            "by_site": {str(site): block(sites == site) for site in sorted(set(sites))}}


def _input_handling(outcomes: list[StudyOutcome]) -> dict[str, Any]:
    """How many rows were refused and why, per site and manufacturer, with the manifest line of each."""
    refused = [o for o in outcomes if o.refused is not None]
    by_reason = Counter(o.refused for o in refused)

    def per(attribute: str) -> dict[str, Any]:
        out: dict[str, dict[str, int]] = {}
        for o in outcomes:
            group = out.setdefault(o.attributes.get(attribute, "unknown"), {"studies": 0, "refused": 0})
            group["studies"] += 1
            if o.refused is not None:
                group["refused"] += 1
                group[o.refused] = group.get(o.refused, 0) + 1
        return dict(sorted(out.items()))

    return {"rows": len(outcomes), "analysed": len(outcomes) - len(refused), "refused": len(refused),
            "by_reason": dict(by_reason.most_common()), "by_site": per("site"),
            "by_manufacturer": per("manufacturer"),
            "refused_rows": [{"line": o.row.number, "reason": o.refused} for o in refused]}


def analyse(manifest: EvaluationManifest, outcomes: list[StudyOutcome], goals: Goals, *, seed: int = 0,
            n_resamples: int = 1000, tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """``results.json`` without its provenance: flags, goals, subgroups, disparities, calibration, report text,
    input handling, and a summary."""
    data = _Data(manifest.flags, outcomes)
    if len(data.outcomes) == 0:
        flags: dict[str, Any] = {}
        subgroups: list[dict[str, Any]] = []
        subgroup_tests: dict[str, Any] = {}
    else:
        flags = _flags_section(data, goals, seed, n_resamples, tick)
        subgroups, subgroup_tests = _subgroups(data, goals, seed, n_resamples, tick)
    judged = [g for f in flags.values() for g in f["goals"]]
    times = [o.seconds for o in data.outcomes]
    return {
        "summary": {"studies": len(outcomes), "analysed": len(data.outcomes),
                    "goals": {"met": sum(g["met"] is True for g in judged),
                              "not_met": sum(g["met"] is False for g in judged),
                              "not_judged": sum(g["met"] is None for g in judged)},
                    "flagged_groups": [f"{g['attribute']}={g['group']}" for g in subgroups if g["flagged"]],
                    "pooled": {"sensitivity": proportion(int((data.y * data.r).sum()), int(data.y.sum())).to_dict(),
                               "specificity": proportion(int(((1 - data.y) * (1 - data.r)).sum()),
                                                         int((1 - data.y).sum())).to_dict()},
                    "seconds_per_study": {"median": round(float(np.median(times)), 3) if times else None}},
        "flags": flags,
        "subgroups": subgroups,
        "subgroup_tests": subgroup_tests,
        "calibration": _calibration(data) if data.outcomes else {},
        "report_text": _report_text(data, manifest.has_reports),
        "input_handling": _input_handling(outcomes),
        "goals": {"source": goals.source, "sha256": goals.sha256, "goals": [g.text() for g in goals.goals],
                  "subgroups": vars(goals.subgroups)},
    }
