"""The report's plots (matplotlib), its HTML (a Jinja2 template, self-contained: plots inline as PNG data URIs,
styles inline, no script, readable without a server) and its PDF (WeasyPrint, from the same HTML). Everything is
drawn from ``results.json``."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the report is written to files

import jinja2  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from markupsafe import Markup  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from clinical_mm.core.findings import FINDING_LABELS  # noqa: E402
from clinical_mm.evaluation.compliance.analysis import ATTRIBUTE_LABELS  # noqa: E402
from clinical_mm.evaluation.compliance.goals import FLAG_METRICS  # noqa: E402

__all__ = ["ENVIRONMENT", "SECTIONS", "plots", "png", "render_html", "write_pdf"]

#: the report's sections: (id, title, what it answers); the PDF and the HTML carry the same
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("summary", "Summary", "EU AI Act Art. 15(3) (declared accuracy); Annex IV 2(g) (test report, dated and signed)"),
    ("performance", "Performance per finding",
     "FDA 21 CFR 892.2080 special controls (standalone performance: sensitivity, specificity, AUROC with "
     "confidence intervals); EU AI Act Art. 15(3); CLAIM 2024 items on performance metrics and their "
     "uncertainty; TRIPOD+AI 12, 23"),
    ("subgroups", "Subgroups",
     "FDA 21 CFR 892.2080(b)(1)(viii) (results stratified by relevant confounders and imaging equipment); EU AI "
     "Act Art. 10(2)(f)-(g) (examination of possible biases), Art. 13(3)(b)(v) (performance regarding specific "
     "persons or groups); TRIPOD+AI 23b; Mitchell et al. 2019 model cards (disaggregated evaluation)"),
    ("calibration", "Calibration",
     "TRIPOD+AI 12e, 23a (calibration of predicted probabilities); EU AI Act Art. 15(3)"),
    ("report-text", "Draft report text",
     "EU AI Act Art. 13(3)(b)(ii) (level of accuracy of the outputs); CLAIM 2024 (reference standard, "
     "agreement with it)"),
    ("input-handling", "Input handling",
     "CONSORT-AI 5(iii) and SPIRIT-AI (how poor-quality or unavailable input was handled); CLAIM 2024 (data "
     "exclusions); TRIPOD+AI 20"),
    ("time-to-notification", "Time to notification",
     "FDA 21 CFR 892.2080 special controls (time-to-notification of a triage device)"),
    ("vision-language", "Vision-language tasks",
     "What the model offers beyond triage and drafts (zero-shot findings, retrieval, questions, grounding, the "
     "input gate): EU AI Act Art. 13(3)(b)(ii) and Art. 15(3) (accuracy of each output); CLAIM 2024 items on "
     "performance metrics and their uncertainty"),
    ("provenance", "Provenance",
     "EU AI Act Annex IV 2(g) (test logs and reports, dated and signed) and Art. 12 (record-keeping); "
     "CLAIM 2024 (model and code availability); TRIPOD+AI 18"),
)


def png(fig: Figure) -> str:
    """A figure as a PNG data URI (closed after)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _roc(results: dict[str, Any]) -> str:
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    for flag, row in results["flags"].items():
        if row["roc"]["fpr"]:
            auc = row["auroc"]["estimate"]
            ax.plot(row["roc"]["fpr"], row["roc"]["tpr"], lw=1.4, label=f"{FINDING_LABELS[flag]} ({auc:.3f})")
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC curves (AUROC)", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(fontsize=7, loc="lower right")
    return png(fig)


def _reliability(results: dict[str, Any]) -> str:
    flags = list(results["calibration"])
    cols = 4
    rows = (len(flags) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.6 * rows), squeeze=False)
    for ax in axes.ravel()[len(flags):]:
        ax.axis("off")
    for ax, flag in zip(axes.ravel(), flags, strict=False):
        bins = results["calibration"][flag]["bins"]
        ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
        ax.plot([b["predicted"] for b in bins], [b["observed"] for b in bins], marker="o", ms=3, lw=1.2)
        ece = results["flags"][flag]["ece"]["estimate"]
        ax.set_title(f"{FINDING_LABELS[flag]}\nECE {ece:.3f}" if ece is not None else FINDING_LABELS[flag],
                     fontsize=8)
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.tick_params(labelsize=7)
    fig.supxlabel("mean predicted probability", fontsize=8)
    fig.supylabel("observed frequency", fontsize=8)
    fig.tight_layout()
    return png(fig)


def _forest(results: dict[str, Any], title: str, value: Any, overall: tuple[Any, Any]) -> str:
    """A forest plot of ``value(group) -> (sensitivity, specificity)`` estimates over every subgroup, with the
    estimates over all studies (``overall``) as dashed lines."""
    groups = results["subgroups"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.28 * len(groups) + 1.2), sharey=True)
    labels = [f"{ATTRIBUTE_LABELS[g['attribute']]}: {g['group']} (n={g['n']})" for g in groups]
    for k, (ax, metric) in enumerate(zip(axes, ("sensitivity", "specificity"), strict=True)):
        for i, g in enumerate(groups):
            e = value(g)[k]
            if e["estimate"] is None:
                continue
            colour = "#b40000" if g["flagged"] else "#999999" if g["too_small"] else "#1f4e79"
            lo, hi = e["lower"] if e["lower"] is not None else e["estimate"], e["upper"] if e["upper"] is not None else e["estimate"]
            ax.plot([lo, hi], [i, i], c=colour, lw=1.4)
            ax.plot([e["estimate"]], [i], marker="s", c=colour, ms=4)
        if overall[k] is not None:
            ax.axvline(overall[k], ls="--", c="#444444", lw=0.8)
        ax.set_title(metric, fontsize=9)
        ax.set_xlim(0, 1.02)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", ls=":", lw=0.5)
    axes[0].set_yticks(range(len(groups)), labels)
    axes[0].invert_yaxis()
    fig.suptitle(title + "  (red: flagged; grey: too small to judge; dashed: all studies)", fontsize=9)
    fig.tight_layout()
    return png(fig)


def plots(results: dict[str, Any]) -> dict[str, str]:
    """Every plot of the report, as PNG data URIs, by name."""
    if not results["flags"]:
        return {}
    pooled = results["summary"]["pooled"]
    out = {"roc": _roc(results), "reliability": _reliability(results),
           "forest_pooled": _forest(results, "All findings pooled, at the operating thresholds",
                                    lambda g: (g["pooled"]["sensitivity"], g["pooled"]["specificity"]),
                                    (pooled["sensitivity"]["estimate"], pooled["specificity"]["estimate"]))}
    for flag, row in results["flags"].items():
        out[f"forest_{flag}"] = _forest(results, FINDING_LABELS[flag],
                                        lambda g, f=flag: (g["metrics"][f]["sensitivity"], g["metrics"][f]["specificity"]),
                                        (row["sensitivity"]["estimate"], row["specificity"]["estimate"]))
    return out


def _ci(e: dict[str, Any] | None, digits: int = 3) -> str:
    if not e or e.get("estimate") is None:
        return "n/a"
    if e.get("lower") is None:
        return f"{e['estimate']:.{digits}f}"
    return f"{e['estimate']:.{digits}f} [{e['lower']:.{digits}f}, {e['upper']:.{digits}f}]"


def _cell(e: dict[str, Any] | None, digits: int = 3) -> Markup:
    """An estimate over its interval, for a table cell."""
    if not e or e.get("estimate") is None:
        return Markup("n/a")
    if e.get("lower") is None:
        return Markup(f"{e['estimate']:.{digits}f}")
    return Markup(f"{e['estimate']:.{digits}f}<br><span class=\"ci\">[{e['lower']:.{digits}f}, "
                  f"{e['upper']:.{digits}f}]</span>")


METRIC_LABELS = {"prevalence": "Prevalence", "auroc": "AUROC", "sensitivity": "Sensitivity",
                 "specificity": "Specificity", "ppv": "PPV", "npv": "NPV", "lr_positive": "LR+", "lr_negative": "LR-",
                 "ece": "ECE", "brier": "Brier score"}

ENVIRONMENT = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                          autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)
ENVIRONMENT.filters["ci"] = _ci
ENVIRONMENT.filters["cell"] = _cell


def _estimates(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """Every ``{"estimate", "lower", "upper"}`` under ``value``, with its dotted name."""
    if isinstance(value, dict) and "estimate" in value:
        return [(prefix, value)]
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _estimates(f"{prefix}.{k}" if prefix else str(k), v)]
    return []


def vision_language_rows(results: dict[str, Any]) -> list[tuple[str, Any]]:
    """The vision-language tasks' estimates as (dotted name, estimate) rows, as ``results.json`` names them."""
    tasks = (results.get("tasks") or {}).get("selected", [])
    return [row for t in tasks for row in _estimates(t, results.get(t))]


def render_html(results: dict[str, Any], images: dict[str, str]) -> str:
    """The self-contained HTML report."""
    return ENVIRONMENT.get_template("report.html.j2").render(
        r=results, images=images, sections=SECTIONS, labels=FINDING_LABELS, attribute_labels=ATTRIBUTE_LABELS,
        metrics=[m for m in FLAG_METRICS if m not in ("ece", "brier")], metric_labels=METRIC_LABELS,
        vl_rows=vision_language_rows(results))


def write_pdf(html: str, path: Path) -> None:
    """The PDF of the HTML report (WeasyPrint; fonts from the system, nothing fetched)."""
    from weasyprint import HTML

    HTML(string=html, base_url=str(path.parent)).write_pdf(path)
