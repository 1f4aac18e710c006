"""De-identify a folder of DICOM files into another: ``clinical-mm deid dicom SRC DST``.

Each file is read, checked, de-identified with :class:`DicomDeidentifier` and written as a PS3.10 file
under ``DST/<study pseudonym>/<series pseudonym>/<instance pseudonym>.dcm``. Each study gets
``receipt.json`` (profile, options and their CID 7050 codes, key id, instances, counts of each action;
no PHI). A file that cannot be de-identified safely is not passed on: its original bytes go to the
quarantine folder (a PHI zone, kept apart from DST) with the reason in ``quarantine.jsonl``, and the rest
of the batch goes on. Every file is recorded in the audit log; every pseudonym issued goes to the
re-identification vault when one is given.

Pixel data: the de-identifier runs its :class:`~clinical_mm.deid.pixel_text.PixelTextCleaner` (OCR,
redaction, verification) on every image whose BurnedInAnnotation is not ``NO``; one that cannot be
verified is quarantined.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from clinical_mm.audit.audit_record import AuditRecord, AuditSink, sha256_hex
from clinical_mm.deid.confidentiality_profile import OPTION_CODES
from clinical_mm.deid.dicom_deidentifier import PROFILE_NAME, DicomDeidentifier
from clinical_mm.deid.vault import PseudonymVault
from clinical_mm.errors import DeidentificationError, DicomReadError, OutputError

__all__ = ["BatchReport", "DicomBatchDeidentifier", "QuarantineEntry"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuarantineEntry:
    """A file held back: its path relative to SRC, its name in the quarantine folder, the PHI-free reason."""

    source: str
    file: str
    error: str
    reason: str


@dataclass
class BatchReport:
    """What a batch did: files written, per-study receipts, files quarantined."""

    written: int = 0
    receipts: dict[str, dict[str, object]] = field(default_factory=dict)
    quarantined: list[QuarantineEntry] = field(default_factory=list)


def _files(src: Path) -> Iterator[Path]:
    if src.is_file():
        yield src
        return
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        if path.name.upper() != "DICOMDIR":
            yield path


class DicomBatchDeidentifier:
    """Runs a :class:`DicomDeidentifier` over files and folders.

    Parameters
    ----------
    deid
        The de-identifier (key and options); build it with ``remember=True`` to fill ``vault``.
    audit
        Audit sink: one record per file.
    vault
        Re-identification vault that receives every pseudonym issued.
    actor
        Who the audit log names.
    """

    def __init__(self, deid: DicomDeidentifier, audit: AuditSink, vault: PseudonymVault | None = None,
                 actor: str = "clinical-mm") -> None:
        if vault is not None and not deid.pseudo.remember:
            raise ValueError("a vault needs a DicomDeidentifier built with remember=True")
        self.deid, self.audit, self.vault, self.actor = deid, audit, vault, actor

    def run(self, src: Path, dst: Path, quarantine: Path) -> BatchReport:
        report = BatchReport()
        counts: dict[str, Counter[str]] = {}
        instances: Counter[str] = Counter()
        for path in _files(src):
            rel = str(path.relative_to(src)) if path != src else path.name
            data = path.read_bytes()
            digest = sha256_hex(data)
            try:
                study, out_path, action_counts = self._one(path, dst)
            except (DicomReadError, DeidentificationError) as exc:
                self.deid.pseudo.drain()  # nothing of a quarantined file reaches the vault
                report.quarantined.append(self._quarantine(path, rel, data, digest, quarantine, exc))
                continue
            report.written += 1
            counts.setdefault(study, Counter()).update(action_counts)
            instances[study] += 1
            self.audit.append(AuditRecord(self.actor, "deidentify", "ok", input_hash=digest, study=study,
                                          output_hash=sha256_hex(out_path.read_bytes())))
        for study, total in counts.items():
            receipt = self._receipt(total, instances[study])
            report.receipts[study] = receipt
            (dst / study / "receipt.json").write_text(json.dumps(receipt, indent=2) + "\n", encoding="utf-8")
        return report

    def _one(self, path: Path, dst: Path) -> tuple[str, Path, Counter[str]]:
        try:
            ds = pydicom.dcmread(path)
        except Exception:  # pydicom raises many types on malformed input; the file goes to quarantine
            raise DicomReadError(f"{path}: not a readable DICOM PS3.10 file", reason="not a readable DICOM file") from None
        out, action_counts = self.deid.deidentify(ds, in_place=True)  # ds is ours: no copy
        uids = [str(out.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
        if not all(uids):
            raise DeidentificationError("StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID is missing")
        target = dst.joinpath(*uids[:2], f"{uids[2]}.dcm")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            out.save_as(target, enforce_file_format=True)
        except (OSError, ValueError) as exc:
            raise OutputError(f"{target}: cannot write ({exc.__class__.__name__})") from None
        if self.vault is not None:
            self.vault.record(self.deid.pseudo.drain())
        return uids[0], target, action_counts

    def _quarantine(self, path: Path, rel: str, data: bytes, digest: str, quarantine: Path,
                    exc: DicomReadError | DeidentificationError) -> QuarantineEntry:
        reason = exc.reason if isinstance(exc, DicomReadError) else str(exc)
        name = f"{digest[:24]}.dcm"
        try:
            quarantine.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, quarantine / name)
            entry = QuarantineEntry(rel, name, exc.__class__.__name__, reason)
            with (quarantine / "quarantine.jsonl").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry.__dict__) + "\n")
        except OSError as err:
            raise OutputError(f"{quarantine}: cannot write to the quarantine ({err.strerror})") from None
        _log.warning("%s: quarantined (%s)", rel, reason)
        self.audit.append(AuditRecord(self.actor, "deidentify", "quarantined", input_hash=digest,
                                      detail=f"{exc.__class__.__name__}: {reason}"))
        return entry

    def _receipt(self, total: Counter[str], n: int) -> dict[str, object]:
        opts = sorted(self.deid.profile.options)
        return {
            "profile": PROFILE_NAME, "method": self.deid.method, "key_id": self.deid.key.key_id,
            "options": opts,
            "codes": [{"code": OPTION_CODES[o][0], "scheme": "DCM", "meaning": OPTION_CODES[o][1]}
                      for o in ["basic", *opts]],
            "instances": n, "action_counts": dict(sorted(total.items())),
        }
