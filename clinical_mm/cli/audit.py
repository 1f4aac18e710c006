"""``clinical-mm audit``: the audit log's hash chain, checked."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from clinical_mm.audit.sqlite_sink import verify_file
from clinical_mm.cli.scaffold import reported_errors
from clinical_mm.core.config import Settings
from clinical_mm.core.errors import AuditChainError

__all__ = ["audit"]


@click.group()
def audit() -> None:
    """The audit log."""


@audit.command("verify")
@click.option("--db", type=click.Path(path_type=Path), help="Audit SQLite file (default: from settings).")
def audit_verify(db: Path | None) -> None:
    """Walk the hash chain of the log, opened read-only; exit 1 and name the first broken record if it does not
    hold, or say so when the file is no audit log."""
    path = db or Settings().audit_path
    if not path.is_file():
        raise click.ClickException(f"{path}: no audit log")
    with reported_errors():
        try:
            report = verify_file(path)
        except AuditChainError as exc:
            click.echo(f"BROKEN at record {exc.record_id}: {exc}", err=True)
            sys.exit(1)
    click.echo(f"ok: {report.records} records, chain head {report.head}")
