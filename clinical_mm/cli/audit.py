"""``clinical-mm audit``: the audit log's hash chain, signatures and anchors, checked; its signing key made; its
records forwarded and exported as FHIR AuditEvents and syslog."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from clinical_mm.audit.audit_log import AuditLogSpec, audit_target
from clinical_mm.audit.signing import load_public_key, read_anchors, write_key_pair
from clinical_mm.cli.scaffold import audit_sink, reported_errors
from clinical_mm.core.config import Settings
from clinical_mm.core.errors import AuditChainError, ConfigurationError, ConnectorError

__all__ = ["audit"]


@click.group()
def audit() -> None:
    """The audit log."""


@audit.command("verify")
@click.option("--db", type=click.Path(path_type=Path), help="Audit SQLite file (default: from settings).")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The deployment's published Ed25519 public key (PEM): every record's signature is checked.")
@click.option("--anchors", "anchor_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An anchor file of signed checkpoints (repeatable; needs --public-key): the log must reach every "
                   "anchored record with the anchored hash.")
def audit_verify(db: Path | None, public_key: Path | None, anchor_files: tuple[Path, ...]) -> None:
    """Walk the hash chain of the log, opened read-only; exit 1 and name the first broken record if it does not
    hold, or say so when the file is no audit log.

    The chain alone shows edits, deletions and swaps inside the log. With --public-key, re-hashed, renumbered,
    appended (forged) and replaced records show too; with --anchors, records cut from the end and a log replaced
    by an older copy show, up to the last anchored record."""
    if anchor_files and public_key is None:
        raise click.UsageError("--anchors needs --public-key (the key that signed them)")
    with reported_errors():
        spec = AuditLogSpec(db) if db is not None else AuditLogSpec(audit_target(Settings()))
        key = load_public_key(public_key) if public_key is not None else None
        anchors = read_anchors(anchor_files)
        try:
            report = spec.verify(key, anchors)
        except AuditChainError as exc:
            click.echo(f"BROKEN at record {exc.record_id}: {exc}", err=True)
            sys.exit(1)
    line = f"ok: {report.records} records, chain head {report.head}"
    if key is not None:
        line += f"; {report.signed} signatures valid"
    if anchors:
        unanchored = report.records - report.anchored_records
        line += (f"; {report.anchors} anchors hold, up to record {report.anchored_records}"
                 f" ({unanchored} later records not yet anchored)")
    click.echo(line)


@audit.command("keygen")
@click.option("--out", "private_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where the private key goes (created with mode 600, never overwritten); keep it outside the data "
                   "folder and point CLINICAL_MM_AUDIT_SIGNING_KEY at it.")
@click.option("--public-out", "public_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where the public key goes (default: OUT with .pub.pem); publish it with the deployment.")
def audit_keygen(private_path: Path, public_path: Path | None) -> None:
    """Make the Ed25519 key pair that signs the audit log and its anchors."""
    public_path = public_path or private_path.with_name(private_path.stem + ".pub.pem")
    with reported_errors():
        kid = write_key_pair(private_path, public_path)
    click.echo(f"signing key {private_path} (mode 600), public key {public_path}, key id {kid}")


@audit.command("forward")
def audit_forward() -> None:
    """Send every audit record the configured destinations have not taken yet: the FHIR server as IHE BALP
    AuditEvents (CLINICAL_MM_AUDIT_FORWARD_FHIR with CLINICAL_MM_FHIR_URL) and the audit record repository as RFC
    5424 syslog over TLS (CLINICAL_MM_AUDIT_SYSLOG, CLINICAL_MM_AUDIT_SYSLOG_CA). Each destination resumes where it
    stopped; `serve` does this continuously. Exit 1 when a destination could not take them (they are sent next
    time)."""
    from clinical_mm.pipeline.audit_forwarding import (  # httpx: not at start-up
        configured_destinations,
        forward,
    )

    with reported_errors():
        settings = Settings()
        destinations = configured_destinations(settings)
        if not destinations:
            raise ConfigurationError("no audit destination: set CLINICAL_MM_AUDIT_FORWARD_FHIR=true (with "
                                     "CLINICAL_MM_FHIR_URL) or CLINICAL_MM_AUDIT_SYSLOG")
        failed = False
        with audit_sink(settings) as sink:
            for destination in destinations:
                try:
                    click.echo(f"{destination.name}: {forward(sink, destination)} records sent")
                except ConnectorError as exc:
                    click.echo(f"{destination.name}: not sent ({exc}); they go next time", err=True)
                    failed = True
    if failed:
        sys.exit(1)


@audit.command("export")
@click.option("--db", type=click.Path(path_type=Path), help="Audit SQLite file (default: from settings).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="NDJSON file of FHIR R4 AuditEvents (IHE BALP), one per record, in id order.")
def audit_export(db: Path | None, out: Path) -> None:
    """Write the audit log as FHIR AuditEvents, each validated, for a repository that imports files."""
    from clinical_mm.outputs.fhir_audit_event import audit_event  # fhir.resources: not at start-up

    with reported_errors():
        settings = Settings()
        records = AuditLogSpec(db if db is not None else audit_target(settings)).records()
        lines = [json.dumps(audit_event(record, settings.actor), separators=(",", ":")) for record in records]
        out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    click.echo(f"{len(lines)} AuditEvents to {out}")


@audit.command("anchors")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Anchor file to write (the form `audit verify --anchors` reads).")
def audit_anchors(out: Path) -> None:
    """Fetch the signed checkpoints anchored on the FHIR server (CLINICAL_MM_FHIR_URL) into an anchor file, for
    `audit verify --anchors`."""
    from clinical_mm.pipeline.audit_forwarding import fhir_checkpoints, fhir_client  # httpx: not at start-up

    with reported_errors():
        client = fhir_client(Settings())
        try:
            found = fhir_checkpoints(client)
        finally:
            client.close()
        out.write_text("".join(c.to_json() + "\n" for _, c in found), encoding="ascii")
    click.echo(f"{len(found)} checkpoints from the FHIR server to {out}")
