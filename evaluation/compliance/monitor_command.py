"""``clinical-mm monitor``: the service's monitoring (clinical_mm.service.monitoring) from its database and audit
log, as ``monitoring.json`` and a self-contained ``monitoring.html``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from clinical_mm.audit.audit_log import AuditLogSpec
from clinical_mm.cli.scaffold import reported_errors
from clinical_mm.core.config import Settings
from clinical_mm.core.errors import OutputError

__all__ = ["monitor", "monitoring_plots"]


def monitoring_plots(report: dict[str, Any]) -> dict[str, str]:
    """Per site over the weeks: the agreement with the signed reports, the refusal rate, the largest drift."""
    import matplotlib.pyplot as plt

    from clinical_mm.evaluation.compliance.render import png

    rows = report["by_site_week"]
    if not rows:
        return {"trends": None}
    weeks = sorted({r["week"] for r in rows})
    sites = sorted({r["site"] for r in rows})
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    panels = (("agreement with signed reports", lambda r: r["agreement"]["estimate"], "min_agreement"),
              ("refusal rate", lambda r: r["refusal_rate"]["estimate"], "max_refusal_rate"),
              ("largest input drift (TVD)", lambda r: max(r["drift"].values()) if r["drift"] else None,
               "max_drift"))
    for ax, (title, value, threshold) in zip(axes, panels, strict=True):
        for site in sites:
            points = [(weeks.index(r["week"]), value(r)) for r in rows if r["site"] == site and value(r) is not None]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", ms=3, label=site)
        ax.axhline(report["thresholds"][threshold], ls="--", c="#b40000", lw=0.8)
        ax.set_xticks(range(len(weeks)), weeks, rotation=45, fontsize=7)
        ax.set_ylim(0, 1.02)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return {"trends": png(fig)}


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: monitoring.json and monitoring.html.")
@click.option("--weeks", type=click.IntRange(1, 520), default=12, show_default=True, help="The last N weeks.")
@click.option("--thresholds", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Alert thresholds (YAML; default CLINICAL_MM_MONITOR_THRESHOLDS or the built-in ones).")
def monitor(out: Path, weeks: int, thresholds: Path | None) -> None:
    """Post-deployment monitoring from the service's database (CLINICAL_MM_DATABASE_URL or
    DATA_DIR/service.sqlite) and audit log: concordance of the AI flags with the radiologists' signed reports,
    drift of the input metadata (manufacturer, model, software version, view) and of the refusal rate per site
    and week, time to notification, and alerts where a threshold is crossed."""
    # the statistics, the labeler and the plots load only when the command runs (every clinical-mm command would
    # pay for them at start-up otherwise)
    from clinical_mm.evaluation.compliance.render import ENVIRONMENT
    from clinical_mm.service.monitoring import DRIFT_ATTRIBUTES, load_thresholds, weekly_monitoring
    from clinical_mm.service.store import ServiceStore

    with reported_errors():
        settings = Settings()
        limits = load_thresholds(thresholds or settings.monitor_thresholds)
        store = ServiceStore.existing(settings.service_database)
        try:
            rows = store.monitoring_rows()
        finally:
            store.close()
        audit = AuditLogSpec.from_settings(settings)
        callbacks = (lambda since: audit.records(action="callback", since=since)) \
            if isinstance(audit.target, str) or audit.target.is_file() else None
        report = weekly_monitoring(rows, callbacks, limits, weeks)
        try:
            out.mkdir(parents=True, exist_ok=True)
            html = ENVIRONMENT.get_template("monitoring.html.j2").render(
                r=report, images=monitoring_plots(report), attributes=DRIFT_ATTRIBUTES)
            (out / "monitoring.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
            (out / "monitoring.html").write_text(html, encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"{out}: cannot write the monitoring ({exc.__class__.__name__})") from None
    click.echo(f"{report['studies']} studies in {weeks} weeks, {report['signed']} signed "
               f"({report['signed_with_edits']} with edits); {len(report['alerts'])} alerts")
    for alert in report["alerts"]:
        click.echo(f"  ALERT {alert['message']}")
    click.echo(f"monitoring: {out / 'monitoring.html'} and {out / 'monitoring.json'}")
