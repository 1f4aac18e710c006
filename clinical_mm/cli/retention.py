"""``clinical-mm purge`` and ``clinical-mm restore-originals``: the retention policy applied by hand, and encrypted
originals given back to the key holder."""

from __future__ import annotations

from pathlib import Path

import click

from clinical_mm.audit.audit_record import AuditRecord
from clinical_mm.cli.scaffold import audit_sink, key_file_option, reported_errors, resolve_key
from clinical_mm.core.config import Settings
from clinical_mm.core.errors import ConfigurationError
from clinical_mm.deid.vault import PseudonymVault
from clinical_mm.service.retention import ENCRYPTED_SUFFIX, Retention, RetentionPolicy, decrypt_original
from clinical_mm.service.store import ServiceStore

__all__ = ["purge", "restore_originals"]


@click.command()
@key_file_option()
def purge(key_file: Path | None) -> None:
    """Apply the retention policy now (`serve` applies it every minute): the received originals of every study
    delivered more than CLINICAL_MM_RETENTION_WINDOW_HOURS ago are deleted, or encrypted at rest with
    CLINICAL_MM_RETENTION_ORIGINALS=encrypt; vault rows older than CLINICAL_MM_RETENTION_VAULT_DAYS are removed.
    Each purge is audited. The audit log is kept: it holds no PHI."""
    with reported_errors():
        settings = Settings()
        key = resolve_key(settings, key_file)
        store = ServiceStore.existing(settings.service_database)
        vault = PseudonymVault(settings.vault_path, key) if not key.ephemeral and settings.vault_path.is_file() \
            else None
        try:
            with audit_sink(settings) as sink:
                report = Retention(RetentionPolicy.from_settings(settings), store, key, sink, vault=vault,
                                   actor=settings.actor).run()
        finally:
            store.close()
            if vault is not None:
                vault.close()
    done = "encrypted" if settings.retention_originals == "encrypt" else "deleted"
    click.echo(f"{report.studies} studies' originals {done} ({report.files} files); {report.vault_rows} vault rows "
               "removed")


@click.command("restore-originals")
@click.argument("study")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder the decrypted originals go to (they hold PHI).")
@key_file_option()
def restore_originals(study: str, out: Path, key_file: Path | None) -> None:
    """Decrypt the originals of STUDY (its pseudonymous id) that the retention policy encrypted, for the key holder
    (a legal hold, a re-analysis); audited."""
    with reported_errors():
        settings = Settings()
        key = resolve_key(settings, key_file)
        folder = settings.data_dir / "spool" / study
        sealed = sorted(folder.glob(f"*{ENCRYPTED_SUFFIX}")) if folder.is_dir() else []
        if not sealed:
            raise ConfigurationError(f"no encrypted originals of study {study}")
        out.mkdir(parents=True, exist_ok=True)
        for path in sealed:
            (out / path.name.removesuffix(ENCRYPTED_SUFFIX)).write_bytes(decrypt_original(key, path))
        with audit_sink(settings) as sink:
            sink.append(AuditRecord(settings.actor, "restore-originals", "ok", study=study,
                                    detail=f"{len(sealed)} files decrypted"))
    click.echo(f"{len(sealed)} originals of {study} decrypted to {out}")
