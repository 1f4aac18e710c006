"""Retention: what the service keeps of what it received, and for how long.

* **Originals** (the DICOM files received, with their PHI, in ``DATA_DIR/spool``): once a study is delivered
  (every callback and egress done), ``CLINICAL_MM_RETENTION_WINDOW_HOURS`` after its last change, they are deleted
  (``CLINICAL_MM_RETENTION_ORIGINALS=delete``, the default) or encrypted at rest (``encrypt``: AES-256-GCM under a
  key derived from the pseudonymisation key, the vault's; ``clinical-mm restore-originals`` gives them back to the
  key holder). Failed studies keep theirs (they are retried). An instance the PACS sends again for a purged study
  is not kept.
* **The vault** (pseudonym -> original, encrypted): kept while results may need re-identifying (egress, the review
  page's accession and name); ``CLINICAL_MM_RETENTION_VAULT_DAYS`` removes rows older than that (their studies'
  results can no longer be linked back).
* **The audit log**: kept; it holds no PHI (hashes, pseudonymous ids, reasons).

Every purge is audited (action ``purge``, the pseudonymous study and the count; never a name or a path's PHI).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clinical_mm.audit.audit_record import AuditRecord, AuditSink
from clinical_mm.core.config import PseudonymKey, Settings
from clinical_mm.core.errors import ClinicalMMError, OutputError, ReidentificationError
from clinical_mm.deid.vault import PseudonymVault
from clinical_mm.service.store import ServiceStore

__all__ = ["ENCRYPTED_SUFFIX", "PurgeReport", "Retention", "RetentionPolicy", "decrypt_original"]

_log = logging.getLogger(__name__)
ENCRYPTED_SUFFIX = ".enc"
_INFO = b"clinical-mm spool originals at rest"


def _aead(key: PseudonymKey) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(key.secret))


def _aad(path: Path) -> bytes:
    """The study folder and file name: an encrypted original cannot be moved to another study or name."""
    return f"{path.parent.name}/{path.name.removesuffix(ENCRYPTED_SUFFIX)}".encode()


def decrypt_original(key: PseudonymKey, path: Path) -> bytes:
    """The original DICOM bytes of an encrypted spool file; :class:`ReidentificationError` for another key or an
    altered file."""
    from cryptography.exceptions import InvalidTag

    data = path.read_bytes()
    try:
        return _aead(key).decrypt(data[:12], data[12:], _aad(path))
    except (InvalidTag, ValueError):
        raise ReidentificationError(f"{path.name}: does not decrypt with this key (another key, or altered)") from None


@dataclass(frozen=True)
class RetentionPolicy:
    """``originals``: ``delete`` or ``encrypt``, ``window_s`` after delivery; ``vault_days``: vault rows older than that
    are removed (None: kept)."""

    originals: str = "delete"
    window_s: float = 72 * 3600.0
    vault_days: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(settings.retention_originals, settings.retention_window_hours * 3600.0,
                   settings.retention_vault_days)


@dataclass
class PurgeReport:
    studies: int = 0
    files: int = 0
    vault_rows: int = 0


class Retention:
    """Applies the policy: :meth:`run` once (``clinical-mm purge``), or every ``period_s`` in a thread of ``serve``."""

    def __init__(self, policy: RetentionPolicy, store: ServiceStore, key: PseudonymKey, audit: AuditSink, *,
                 vault: PseudonymVault | None = None, actor: str = "clinical-mm", period_s: float = 60.0) -> None:
        self.policy, self.store, self.key, self.audit = policy, store, key, audit
        self.vault, self.actor, self.period_s = vault, actor, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cmm-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.run()
            except ClinicalMMError as exc:
                _log.warning("retention: %s", exc.__class__.__name__)

    def run(self) -> PurgeReport:
        """Purge every study due, then the vault's old rows."""
        report = PurgeReport()
        while (claimed := self.store.claim_expired_originals(self.policy.window_s)) is not None:
            study_key, files = claimed
            report.files += self._purge_study(study_key, files)
            report.studies += 1
        if self.vault is not None and self.policy.vault_days is not None:
            report.vault_rows = self.vault.purge_older_than(self.policy.vault_days * 86400.0)
            if report.vault_rows:
                self.audit.append(AuditRecord(self.actor, "purge:vault", "ok",
                                              detail=f"{report.vault_rows} rows older than {self.policy.vault_days:g} days"))
        return report

    def _purge_study(self, study_key: str, files: list[Path]) -> int:
        """Delete or encrypt one study's originals; audited. A file that cannot be handled leaves the study for the
        next round (``present`` again after a restart)."""
        done = 0
        try:
            for path in files:
                if not path.exists():
                    continue
                if self.policy.originals == "encrypt":
                    nonce = os.urandom(12)
                    target = path.with_name(path.name + ENCRYPTED_SUFFIX)
                    sealed = nonce + _aead(self.key).encrypt(nonce, path.read_bytes(), _aad(target))
                    _write_durably(target, sealed)
                path.unlink()
                done += 1
            _remove_empty(files)
        except OSError as exc:
            raise OutputError(f"study {study_key}: originals not purged ({exc.__class__.__name__})") from None
        state = "encrypted" if self.policy.originals == "encrypt" else "deleted"
        self.store.set_originals(study_key, state)
        self.audit.append(AuditRecord(self.actor, "purge", "ok", study=study_key,
                                      detail=f"originals {state}: {done} files"))
        return done


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _remove_empty(files: list[Path]) -> None:
    for folder in {f.parent for f in files}:
        try:
            folder.rmdir()
        except OSError:  # not empty (encrypted files, a new instance): kept
            pass
