"""Post-deployment monitoring of the service: concordance of the AI flags with the radiologists' signed reports,
drift of the input metadata and of the refusal rate, and the time to notification, per site and ISO week, with
alerts where a configurable threshold is crossed. ``clinical-mm monitor`` writes it as JSON and HTML;
``GET /v1/monitoring`` (role admin) answers it as JSON.

- **Site**: where a study came from: the calling AE title of its C-STORE, ``stow-rs`` or ``pull``.
- **Concordance**: for each signed study, what the signed report states of each flag (the report labeler's
  triage reading: stated or not) against the flags the model raised in the draft the radiologist signed (kept with the review:
  a study analysed again later keeps it); per flag the agreement, the model's sensitivity and PPV
  against the radiologist, and Cohen's kappa; per site and week the agreement over all flags. A signed report
  whose text differs from the draft counts as *signed with edits*.
- **Drift**: per site, each later week's distribution of manufacturer, device model, software version and view
  (studies whose inputs were recorded) against the site's baseline: its first ``baseline_weeks`` weeks since the
  service first saw it, whatever window is asked for, extended until they hold ``min_studies`` studies (no drift
  is judged before). The distance is the total variation distance (half the L1 distance of the two
  distributions: 0 the same, 1 disjoint).
- **Refusals**: studies that failed without a result (not a chest radiograph, unreadable), per site and week, with
  their reasons; a study analysed whose callbacks were dead-lettered counts as a delivery failure instead.
  Weeks are ISO weeks in UTC; a window starts on the Monday of its first week.
- **Time to notification**: from a study's arrival (its first instance received) to its first triage callback
  sent, read from the audit log: median with a bootstrap 95% interval, and the 90th percentile.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from clinical_mm.core.errors import ConfigurationError
from clinical_mm.core.findings import FINDINGS
from clinical_mm.core.metrics import wilson_interval
from clinical_mm.extraction.chexpert import RadiologyReportLabeler

__all__ = ["DRIFT_ATTRIBUTES", "MonitoringThresholds", "iso_week", "load_thresholds", "monitoring_report",
           "week_start", "weekly_monitoring"]

#: the input metadata watched for drift
DRIFT_ATTRIBUTES = ("manufacturer", "model", "software", "view")


@dataclass(frozen=True)
class MonitoringThresholds:
    """When the monitoring raises an alert (a YAML file of these keys; ``clinical-mm monitor --thresholds``,
    ``CLINICAL_MM_MONITOR_THRESHOLDS`` for the service)."""

    min_agreement: float = 0.85  # a site-week's agreement of the flags with the signed reports below this
    max_refusal_rate: float = 0.10  # a site-week's share of studies refused or failed above this
    max_drift: float = 0.30  # a site-week's total variation distance from the site's baseline above this
    baseline_weeks: int = 1  # a site's first weeks with studies: the baseline of its drift
    min_studies: int = 10  # a site-week with fewer studies (signed studies, for agreement) is not judged


def load_thresholds(path: Path | None) -> MonitoringThresholds:
    """The thresholds of a YAML file (keys of :class:`MonitoringThresholds`), or the defaults."""
    if path is None:
        return MonitoringThresholds()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError: not UTF-8
        raise ConfigurationError(f"{path}: cannot read the monitoring thresholds ({exc.__class__.__name__})") from None
    fields = set(MonitoringThresholds.__dataclass_fields__)
    if not isinstance(raw, dict) or set(raw) - fields:
        raise ConfigurationError(f"{path}: the monitoring thresholds take {', '.join(sorted(fields))}")
    for key, value in raw.items():
        rate = key in ("min_agreement", "max_refusal_rate", "max_drift")
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value) or \
                (rate and not 0 <= value <= 1) or (not rate and (value != int(value) or value < 1)):
            raise ConfigurationError(f"{path}: {key} must be {'a number from 0 to 1' if rate else 'a whole number >= 1'}")
    return MonitoringThresholds(**{k: type(getattr(MonitoringThresholds(), k))(v) for k, v in raw.items()})


def week_start(epoch: float) -> float:
    """The start (Monday 00:00 UTC) of the ISO week of a time."""
    day = dt.datetime.fromtimestamp(epoch, dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day - dt.timedelta(days=day.weekday())).timestamp()


def iso_week(epoch: float) -> str:
    """The ISO week of a time: ``2026-W49``."""
    year, week, _ = dt.datetime.fromtimestamp(epoch, dt.UTC).isocalendar()
    return f"{year}-W{week:02d}"


def _wilson(k: int, n: int) -> dict[str, float | None]:
    if n == 0:
        return {"estimate": None, "lower": None, "upper": None}
    low, high = wilson_interval(k, n)
    return {"estimate": round(k / n, 4), "lower": round(low, 4), "upper": round(high, 4)}


def _tvd(a: Counter[str], b: Counter[str]) -> float:
    na, nb = sum(a.values()), sum(b.values())
    if na == 0 or nb == 0:
        return 0.0
    return round(0.5 * sum(abs(a[k] / na - b[k] / nb) for k in set(a) | set(b)), 4)


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).lower() == " ".join(b.split()).lower()


def _concordance(signed: list[dict[str, Any]], labeler: RadiologyReportLabeler) -> tuple[dict[str, Any], list[bool]]:
    """Per flag: the 2x2 table of model against signed report, agreement, sensitivity, PPV, kappa; and per signed
    study whether every flag agreed."""
    stated = [labeler.stated_present(f"FINDINGS: {r['signed_findings']}\nIMPRESSION: {r['signed_impression']}")
              for r in signed]
    per_flag: dict[str, Any] = {}
    all_agree = [True] * len(signed)
    for flag in FINDINGS:
        ai = np.array([flag in (r["result"].get("raised") or []) for r in signed], dtype=bool)
        rad = np.array([bool(s[flag]) for s in stated], dtype=bool)
        both, ai_only, rad_only = int((ai & rad).sum()), int((ai & ~rad).sum()), int((~ai & rad).sum())
        agree = len(signed) - ai_only - rad_only
        for i in np.flatnonzero(ai != rad):
            all_agree[int(i)] = False
        kappa = float(cohen_kappa_score(rad, ai)) if len(signed) and len(set(rad.tolist()) | set(ai.tolist())) > 1 \
            else None
        per_flag[flag] = {"signed": len(signed), "both_positive": both, "ai_only": ai_only,
                          "radiologist_only": rad_only, "both_negative": agree - both,
                          "agreement": _wilson(agree, len(signed)), "sensitivity": _wilson(both, both + rad_only),
                          "ppv": _wilson(both, both + ai_only),
                          "kappa": None if kappa is None or not np.isfinite(kappa) else round(kappa, 4)}
    return per_flag, all_agree


def _notification_times(rows: list[dict[str, Any]], audit: Iterable[dict[str, Any]] | None) -> dict[str, Any]:
    """From arrival to the first callback sent, per study, from the audit log's ``callback``/``sent`` records."""
    if audit is None:
        return {"available": False, "reason": "no audit log to read"}
    sent: dict[str, float] = {}
    for rec in audit:
        if rec.get("action") == "callback" and rec.get("outcome") == "sent" and rec.get("study"):
            t = dt.datetime.fromisoformat(str(rec["timestamp"])).timestamp()
            sent[str(rec["study"])] = min(t, sent.get(str(rec["study"]), t))
    by_site: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["study_key"] in sent:
            by_site[r["source"] or "unknown"].append(max(0.0, sent[r["study_key"]] - float(r["arrived_at"])))

    def summary(times: list[float]) -> dict[str, Any]:
        x = np.array(times, dtype=float)
        median: dict[str, float | None] = {"estimate": round(float(np.median(x)), 3), "lower": None, "upper": None}
        if len(x) >= 5 and np.ptp(x) > 0:
            ci = stats.bootstrap((x,), np.median, n_resamples=2000, method="percentile", batch=100,
                                 rng=np.random.default_rng(0)).confidence_interval
            median.update(lower=round(float(ci.low), 3), upper=round(float(ci.high), 3))
        return {"n": len(x), "median_seconds": median, "p90_seconds": round(float(np.percentile(x, 90)), 3)}

    everything = [t for times in by_site.values() for t in times]
    if not everything:
        return {"available": False, "reason": "no triage callback sent in the period (audit log)"}
    return {"available": True, **summary(everything),
            "by_site": {site: summary(times) for site, times in sorted(by_site.items())}}


def _baselines(rows: list[dict[str, Any]], thresholds: MonitoringThresholds) -> dict[str, dict[str, Any]]:
    """Per site, the input distributions of its first ``baseline_weeks`` weeks with recorded inputs (since the
    service first saw it, whatever the window asked for), extended week by week until it holds ``min_studies``
    studies; ``None`` distributions while the site has not yet had that many."""
    by_site: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("manufacturer") is not None:  # inputs recorded (analysed or refused after reading)
            by_site[r["site"]][r["week"]].append(r)
    out: dict[str, dict[str, Any]] = {}
    for site, weeks in by_site.items():
        chosen: list[str] = []
        for week in sorted(weeks):
            if len(chosen) >= thresholds.baseline_weeks and sum(len(weeks[w]) for w in chosen) >= thresholds.min_studies:
                break
            chosen.append(week)
        base = [r for w in chosen for r in weeks[w]]
        enough = len(base) >= thresholds.min_studies
        out[site] = {"weeks": chosen, "studies": len(base),
                     "counts": {a: Counter(str(r.get(a) or "unknown") for r in base) for a in DRIFT_ATTRIBUTES}
                     if enough else None}
    return out


def _alerts(row: dict[str, Any], n_inputs: int, thresholds: MonitoringThresholds) -> list[dict[str, Any]]:
    """The alerts of one site-week row."""
    site, week, where = row["site"], row["week"], f"{row['site']} {row['week']}"
    out: list[dict[str, Any]] = []
    if row["studies"] >= thresholds.min_studies:
        rate = row["refused"] / row["studies"]
        if rate > thresholds.max_refusal_rate:
            out.append({"site": site, "week": week, "kind": "refusal_rate", "value": round(rate, 4),
                        "threshold": thresholds.max_refusal_rate,
                        "message": f"{where}: {row['refused']} of {row['studies']} studies refused ({rate:.0%})"})
    if n_inputs >= thresholds.min_studies:
        for a, value in (row["drift"] or {}).items():
            if value > thresholds.max_drift:
                out.append({"site": site, "week": week, "kind": f"drift_{a}", "value": value,
                            "threshold": thresholds.max_drift,
                            "message": f"{where}: {a} drifted from the baseline (distance {value:.2f})"})
    if row["signed"] >= thresholds.min_studies:
        value = row["agreement"]["estimate"]
        if value is not None and value < thresholds.min_agreement:
            out.append({"site": site, "week": week, "kind": "agreement", "value": value,
                        "threshold": thresholds.min_agreement,
                        "message": f"{where}: flags agreed with the signed report in {value:.0%} of "
                                   f"{row['signed']} signed studies"})
    return out


def _refused(r: dict[str, Any]) -> bool:
    """Refused: failed without a result (not a chest radiograph, unreadable, ...); a study that was analysed and
    whose callbacks were dead-lettered is a delivery failure, not a refusal."""
    return r["state"] == "failed" and not r.get("result")


def _site_weeks(rows: list[dict[str, Any]], agree_of: dict[str, bool], edited: set[str],
                baselines: dict[str, dict[str, Any]], thresholds: MonitoringThresholds
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One row per site and ISO week (studies, refusals, delivery failures, signed, agreement, drift from the
    site's baseline, input counts), and the alerts their thresholds raise."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        cells[(r["site"], r["week"])].append(r)
    table: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for (site, week), group in sorted(cells.items()):
        refused = [r for r in group if _refused(r)]
        signed_here = [r for r in group if r["study_key"] in agree_of]
        with_inputs = [r for r in group if r.get("manufacturer") is not None]
        base = baselines.get(site, {"weeks": [], "counts": None})
        in_baseline = week in base["weeks"]
        drift = None if in_baseline or base["counts"] is None or not with_inputs else {
            a: _tvd(Counter(str(r.get(a) or "unknown") for r in with_inputs), base["counts"][a])
            for a in DRIFT_ATTRIBUTES}
        row: dict[str, Any] = {
            "site": site, "week": week, "studies": len(group), "refused": len(refused),
            "refusal_rate": _wilson(len(refused), len(group)),
            "refusal_reasons": dict(Counter(str(r.get("error") or "unknown")[:120] for r in refused)),
            "delivery_failed": sum(r["state"] == "failed" and bool(r.get("result")) for r in group),
            "signed": len(signed_here), "signed_with_edits": sum(r["study_key"] in edited for r in signed_here),
            "rejected": sum(r.get("review") == "rejected" for r in group),
            "agreement": _wilson(sum(agree_of[r["study_key"]] for r in signed_here), len(signed_here)),
            "baseline": in_baseline, "drift": drift,
            "inputs": {a: dict(Counter(str(r.get(a) or "unknown") for r in with_inputs)) for a in DRIFT_ATTRIBUTES}}
        table.append(row)
        alerts += _alerts(row, len(with_inputs), thresholds)
    return table, alerts


def monitoring_report(rows: list[dict[str, Any]], audit: Iterable[dict[str, Any]] | None,
                      thresholds: MonitoringThresholds, since: float = 0.0,
                      labeler: RadiologyReportLabeler | None = None) -> dict[str, Any]:
    """The monitoring from ``since`` (epoch seconds, moved back to the start of its ISO week, UTC) of ``rows``
    (:meth:`ServiceStore.monitoring_rows` of every study: a site's drift baseline is its first weeks ever) and
    ``audit`` (audit records as dicts; ``None`` when there is no audit log)."""
    labeler = labeler or RadiologyReportLabeler()
    start = week_start(since)
    for r in rows:
        r["site"] = r.get("source") or "unknown"
        r["week"] = iso_week(float(r["arrived_at"]))
    baselines = _baselines(rows, thresholds)
    rows = [r for r in rows if float(r["arrived_at"]) >= start]
    for r in rows:  # the draft a review was made against, where kept (a study analysed again keeps it)
        if r.get("signed_draft"):
            r["result"] = {**(r.get("result") or {}), **r["signed_draft"]}
    signed = [r for r in rows if r.get("review") == "signed" and r.get("result")]
    per_flag, all_agree = _concordance(signed, labeler)
    agree_of = {r["study_key"]: ok for r, ok in zip(signed, all_agree, strict=True)}
    edited = {r["study_key"] for r in signed
              if not (_same_text(r["signed_findings"] or "", r["result"].get("findings") or "")
                      and _same_text(r["signed_impression"] or "", r["result"].get("impression") or ""))}
    table, alerts = _site_weeks(rows, agree_of, edited, baselines, thresholds)
    arrived = [float(r["arrived_at"]) for r in rows]
    return {
        "period": {"from": dt.datetime.fromtimestamp(start, dt.UTC).isoformat(timespec="seconds"),
                   "first_arrival": iso_week(min(arrived)) if arrived else None,
                   "last_arrival": iso_week(max(arrived)) if arrived else None, "weeks_are": "ISO weeks, UTC"},
        "studies": len(rows), "refused": sum(_refused(r) for r in rows),
        "delivery_failed": sum(r["state"] == "failed" and bool(r.get("result")) for r in rows),
        "signed": len(signed), "signed_with_edits": len(edited),
        "rejected": sum(r.get("review") == "rejected" for r in rows),
        "concordance": {"agreement_all_flags": _wilson(sum(all_agree), len(signed)), "by_flag": per_flag},
        "by_site_week": table,
        "baselines": {site: {"weeks": b["weeks"], "studies": b["studies"], "enough": b["counts"] is not None}
                      for site, b in sorted(baselines.items())},
        "time_to_notification": _notification_times(rows, audit),
        "alerts": alerts, "thresholds": asdict(thresholds),
    }


def weekly_monitoring(rows: list[dict[str, Any]], callbacks: Callable[[str], list[dict[str, Any]]] | None,
                      thresholds: MonitoringThresholds, weeks: int, now: float | None = None) -> dict[str, Any]:
    """The monitoring of the last ``weeks`` ISO weeks, the current one included, from their Monday (UTC), as
    ``clinical-mm monitor`` writes it and ``GET /v1/monitoring`` answers it. ``callbacks(since)`` reads the audit
    log's callback records from an ISO time (``None``: there is no audit log)."""
    now = time.time() if now is None else now
    since = week_start(now - (weeks - 1) * 7 * 86400)
    audit = callbacks(dt.datetime.fromtimestamp(since, dt.UTC).isoformat()) if callbacks is not None else None
    return {**monitoring_report(rows, audit, thresholds, since), "weeks": weeks,
            "generated": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds")}
