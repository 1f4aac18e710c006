"""De-identify a folder of DICOM files into another: ``clinical-mm deid dicom SRC DST``.

Each file is read, checked, de-identified with :class:`DicomDeidentifier` and written as a PS3.10 file
under ``DST/<study pseudonym>/<series pseudonym>/<instance pseudonym>.dcm``. Each study gets
``receipt.json`` (profile, options and their CID 7050 codes, key id, instances, counts of each action;
no PHI). A file that cannot be de-identified safely is not passed on: its original bytes go to the
quarantine folder (a PHI zone, kept apart from DST) with the reason in ``quarantine.jsonl``, and the rest
of the batch goes on. Every file is recorded in the audit log; every pseudonym issued goes to the
re-identification vault when one is given. :func:`run_batch` deals the files out to several processes
(each with its own de-identifier and connections to the same audit log and vault, which serialise
their writes) and merges what they did.

Pixel data: the de-identifier runs its :class:`~clinical_mm.deid.pixel_text.PixelTextCleaner` (detection,
redaction, verification) on every image whose BurnedInAnnotation is not ``NO``; one that cannot be
verified is quarantined.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydicom

from clinical_mm.audit.audit_log import AuditLogSpec
from clinical_mm.audit.audit_record import AuditRecord, AuditSink, sha256_hex
from clinical_mm.core.config import PseudonymKey, Settings
from clinical_mm.core.errors import (
    AuditError,
    ConfigurationError,
    DeidentificationError,
    DicomReadError,
    OutputError,
)
from clinical_mm.core.pixel_limits import PixelLimits
from clinical_mm.deid.confidentiality_profile import OPTION_CODES
from clinical_mm.deid.dicom_deidentifier import PROFILE_NAME, DicomDeidentifier
from clinical_mm.deid.pixel_text import KnownTextRegions, PixelTextCleaner
from clinical_mm.deid.safe_private import SafePrivateList
from clinical_mm.deid.text.site_terms import SiteTerms
from clinical_mm.deid.vault import PseudonymVault
from clinical_mm.pipeline.text_deidentification import allowed_terms, site_vocabulary

if TYPE_CHECKING:
    from clinical_mm.pipeline.cluster import ClusterRun

__all__ = ["BatchReport", "BatchSpec", "DicomBatchDeidentifier", "QuarantineEntry", "run_batch"]

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


@dataclass(frozen=True)
class BatchSpec:
    """Everything a batch process needs to build its own de-identifier, audit sink and vault.

    ``vault`` None: no re-identification vault (a throwaway demo key). ``vocabulary`` and ``recognizers``: the
    site's files (``CLINICAL_MM_VOCABULARY``, ``CLINICAL_MM_RECOGNIZERS``) for the clean options' text;
    ``site_terms`` and ``threshold``: the site's allow/deny terms (``CLINICAL_MM_DEID_TERMS``, read) and score
    threshold (``CLINICAL_MM_DEID_THRESHOLD``) for it.
    """

    key: PseudonymKey
    options: tuple[str, ...] = ()
    safe_private: SafePrivateList | None = None
    regions: KnownTextRegions | None = None
    audit: AuditLogSpec = AuditLogSpec(Path("audit.sqlite"))
    vault: Path | None = None
    actor: str = "clinical-mm"
    vocabulary: Path | None = None
    recognizers: Path | None = None
    pixel_limits: PixelLimits = PixelLimits()
    site_terms: SiteTerms | None = None
    threshold: float | None = None

    def deidentifier(self) -> DicomDeidentifier:
        """The de-identifier of one batch process. The clean options' text de-identifier allows the words of the
        extraction vocabulary (the shipped one, with the site's ``vocabulary`` file on top) and applies the
        site's ``recognizers`` file, terms and threshold, as every text de-identifier does."""
        return DicomDeidentifier(self.key, self.options, remember=self.vault is not None,
                                 safe_private=self.safe_private, pixels=PixelTextCleaner(self.regions),
                                 allowed_terms=allowed_terms(site_vocabulary(self.vocabulary)),
                                 recognizers=self.recognizers, site_terms=self.site_terms,
                                 threshold=self.threshold)


@dataclass
class _Partial:
    """One process's share of a batch, merged by the parent."""

    written: int = 0
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    instances: Counter[str] = field(default_factory=Counter)
    quarantined: list[QuarantineEntry] = field(default_factory=list)


def run_batch(spec: BatchSpec, src: Path, dst: Path, quarantine: Path, workers: int = 1,
              cluster: ClusterRun | None = None) -> BatchReport:
    """De-identify SRC into DST with ``workers`` processes (files dealt out in turn), or on ``cluster``'s workers
    (each with the key of its own settings, checked against this one's); receipts and the quarantine list are
    written once, by this process, from the merged results."""
    files = list(_files(src))
    n = max(1, min(workers, len(files)))
    spec.audit.open().close()  # create the audit log and the vault once, before the workers open them
    if spec.vault is not None:
        PseudonymVault(spec.vault, spec.key).close()
    if cluster is not None:
        from clinical_mm.pipeline.cluster import WorkerResource  # Dask: only for a cluster run

        n = max(1, min(len(files), 4 * cluster.workers))
        remote = {f.name: getattr(spec, f.name) for f in fields(spec) if f.name != "key"}  # the key stays here
        resource = WorkerResource(f"deid:{uuid.uuid4()}", partial(_worker_spec, remote, spec.key.key_id))
        parts = list(cluster.map(resource, _work, [files[i::n] for i in range(n)], src, dst, quarantine))
    elif n == 1:
        parts = [_work(spec, files, src, dst, quarantine)]
    else:
        with ProcessPoolExecutor(n) as pool:
            parts = list(pool.map(_work, [spec] * n, [files[i::n] for i in range(n)], [src] * n, [dst] * n,
                                  [quarantine] * n))
    total = _Partial()
    for part in parts:
        total.written += part.written
        total.instances.update(part.instances)
        total.quarantined += part.quarantined
        for study, counts in part.counts.items():
            total.counts.setdefault(study, Counter()).update(counts)
    return _finish(spec.deidentifier(), total, dst, quarantine)


def _worker_spec(remote: dict[str, Any], key_id: str) -> BatchSpec:
    """A cluster worker's spec: the run's, with the key of the worker's own settings (refused when another)."""
    key = Settings().load_key()
    if key.key_id != key_id:
        raise ConfigurationError(f"this worker's pseudonymisation key is {key.key_id}, the run's is {key_id}")
    return BatchSpec(key=key, **remote)


def _work(spec: BatchSpec, files: list[Path], src: Path, dst: Path, quarantine: Path) -> _Partial:
    sink = spec.audit.open()
    vault = PseudonymVault(spec.vault, spec.key) if spec.vault is not None else None
    try:
        batch = DicomBatchDeidentifier(spec.deidentifier(), sink, vault, spec.actor, spec.pixel_limits)
        return batch._process(files, src, dst, quarantine)
    finally:
        sink.close()
        if vault is not None:
            vault.close()


def _finish(deid: DicomDeidentifier, part: _Partial, dst: Path, quarantine: Path) -> BatchReport:
    report = BatchReport(written=part.written, quarantined=sorted(part.quarantined, key=lambda e: e.source))
    opts = sorted(deid.profile.options)
    for study, total in part.counts.items():
        receipt: dict[str, object] = {
            "profile": PROFILE_NAME, "method": deid.method, "key_id": deid.key.key_id, "options": opts,
            "codes": [{"code": OPTION_CODES[o][0], "scheme": "DCM", "meaning": OPTION_CODES[o][1]}
                      for o in ["basic", *opts]],
            "instances": part.instances[study], "action_counts": dict(sorted(total.items())),
        }
        report.receipts[study] = receipt
        (dst / study / "receipt.json").write_text(json.dumps(receipt, indent=2) + "\n", encoding="utf-8")
    if report.quarantined:
        try:
            with (quarantine / "quarantine.jsonl").open("a", encoding="utf-8") as fh:
                fh.writelines(json.dumps(e.__dict__) + "\n" for e in report.quarantined)
        except OSError as err:
            raise OutputError(f"{quarantine}: cannot write to the quarantine ({err.strerror})") from None
    return report


class DicomBatchDeidentifier:
    """Runs a :class:`DicomDeidentifier` over files and folders in this process.

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
                 actor: str = "clinical-mm", pixel_limits: PixelLimits | None = None) -> None:
        if vault is not None and not deid.pseudo.remember:
            raise ValueError("a vault needs a DicomDeidentifier built with remember=True")
        self.deid, self.audit, self.vault, self.actor = deid, audit, vault, actor
        self.pixel_limits = pixel_limits or PixelLimits()

    def run(self, src: Path, dst: Path, quarantine: Path) -> BatchReport:
        return _finish(self.deid, self._process(list(_files(src)), src, dst, quarantine), dst, quarantine)

    def _process(self, files: list[Path], src: Path, dst: Path, quarantine: Path) -> _Partial:
        part = _Partial()
        for path in files:
            rel = str(path.relative_to(src)) if path != src else path.name
            data = path.read_bytes()
            digest = sha256_hex(data)
            try:
                study, output_hash, action_counts = self._within_boundary(path, data, dst)
            except (DicomReadError, DeidentificationError) as exc:
                self.deid.pseudo.drain()  # nothing of a quarantined file reaches the vault
                part.quarantined.append(self._quarantine(path, rel, digest, quarantine, exc))
                continue
            part.written += 1
            part.counts.setdefault(study, Counter()).update(action_counts)
            part.instances[study] += 1
            self.audit.append(AuditRecord(self.actor, "deidentify", "ok", input_hash=digest, study=study,
                                          output_hash=output_hash))
        return part

    def _within_boundary(self, path: Path, data: bytes, dst: Path) -> tuple[str, str, Counter[str]]:
        """:meth:`_one`, where nothing one file does stops the batch: any exception but a failure of our own
        outputs (:class:`OutputError`, the audit log's) becomes a :class:`DeidentificationError` naming its
        class (never its message, which may quote a value), and the file goes to quarantine."""
        try:
            return self._one(path, data, dst)
        except (DicomReadError, DeidentificationError, OutputError, AuditError):
            raise
        except Exception as exc:  # noqa: BLE001 - the batch boundary: one file never stops the others
            raise DeidentificationError(f"cannot be de-identified safely ({exc.__class__.__name__})") from None

    def _one(self, path: Path, data: bytes, dst: Path) -> tuple[str, str, Counter[str]]:
        """De-identify one file's bytes and write the result; return the study pseudonym, the output's sha256
        and the action counts. The file is read once and written once."""
        try:
            ds = pydicom.dcmread(io.BytesIO(data))
        except Exception:  # pydicom raises many types on malformed input; the file goes to quarantine
            raise DicomReadError(f"{path}: not a readable DICOM PS3.10 file", reason="not a readable DICOM file") from None
        too_large = self.pixel_limits.instance_refusal(ds)  # before anything decodes the pixels
        if too_large is not None:
            raise DeidentificationError(too_large)
        out, action_counts = self.deid.deidentify(ds, in_place=True)  # ds is ours: no copy
        uids = [str(out.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
        if not all(uids):
            raise DeidentificationError("StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID is missing")
        target = dst.joinpath(*uids[:2], f"{uids[2]}.dcm")
        buf = io.BytesIO()
        try:
            out.save_as(buf, enforce_file_format=True)
        except (ValueError, TypeError, AttributeError) as exc:  # the file's own encoding cannot hold the result
            raise DeidentificationError(f"cannot be written in its transfer syntax ({exc.__class__.__name__})") from None
        if self.vault is not None:  # first: a file written is always re-linkable, even if the process dies next
            self.vault.record(self.deid.pseudo.drain())
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(buf.getbuffer())
        except OSError as exc:
            raise OutputError(f"{target}: cannot write ({exc.__class__.__name__})") from None
        return uids[0], sha256_hex(buf.getvalue()), action_counts

    def _quarantine(self, path: Path, rel: str, digest: str, quarantine: Path,
                    exc: DicomReadError | DeidentificationError) -> QuarantineEntry:
        reason = exc.reason if isinstance(exc, DicomReadError) else str(exc)
        name = f"{digest[:24]}.dcm"
        try:
            quarantine.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, quarantine / name)
        except OSError as err:
            raise OutputError(f"{quarantine}: cannot write to the quarantine ({err.strerror})") from None
        _log.warning("%s: quarantined (%s)", rel, reason)
        self.audit.append(AuditRecord(self.actor, "deidentify", "quarantined", input_hash=digest,
                                      detail=f"{exc.__class__.__name__}: {reason}"))
        return QuarantineEntry(rel, name, exc.__class__.__name__, reason)
