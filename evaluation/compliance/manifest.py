"""The test manifest of ``clinical-mm evaluate``: its rows, their subgroup attributes, and the refusal of a test
set that overlaps the model's training data.

A manifest is a CSV file (``clinical-mm synth`` writes one) with a ``path`` column (a DICOM file or a study's
folder, relative to the manifest's folder) and a 0/1 column per flag. Optional: ``study_id``, ``sex``, ``age``,
``site``, ``manufacturer``, ``view``, and the reference report as ``findings`` and ``impression``. A subgroup
attribute missing from the manifest is read from the DICOM header (PatientSex, PatientAge, Manufacturer,
ViewPosition) before de-identification, as a coarse value only: a sex code, an age band, a device maker, a view.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinical_mm.audit.audit_record import sha256_file as file_sha256
from clinical_mm.core.errors import ManifestError
from clinical_mm.core.findings import FINDINGS

__all__ = [
    "ATTRIBUTES",
    "clean_value",
    "sex_code",
    "ManifestRow",
    "EvaluationManifest",
    "age_band",
    "check_no_overlap",
    "file_sha256",
    "read_manifest",
]

#: the subgroup attributes of the report, in its order
ATTRIBUTES: tuple[str, ...] = ("sex", "age_band", "site", "manufacturer", "view")

_AGE_BANDS: tuple[tuple[int, str], ...] = ((18, "<18"), (40, "18-39"), (60, "40-59"), (75, "60-74"), (200, "75+"))


_SEXES = {"F": "F", "FEMALE": "F", "W": "F", "WOMAN": "F", "M": "M", "MALE": "M", "MAN": "M", "O": "O", "OTHER": "O"}


def sex_code(value: str) -> str:
    """The DICOM sex code (F, M, O) of a manifest's or header's value; anything else as written, upper case."""
    text = value.strip().upper()
    return _SEXES.get(text, text or "unknown")


def clean_value(value: str, limit: int = 64) -> str:
    """A subgroup value as the report shows it: printable characters only (a control character would make the
    model card ill-formed XML), whitespace collapsed, at most ``limit`` characters."""
    return " ".join("".join(ch for ch in value if ch.isprintable()).split())[:limit]


def age_band(age: str | int | None) -> str:
    """The age band of an age in years (``"unknown"`` when there is none): <18, 18-39, 40-59, 60-74, 75+. A
    DICOM age string (``"067Y"``) is read too; months, weeks and days are under 18."""
    if age is None or str(age).strip() == "":
        return "unknown"
    text = str(age).strip().upper()
    m = re.fullmatch(r"(\d{1,3})([YMWD]?)", text)
    if m is None:
        return "unknown"
    years = int(m.group(1)) if m.group(2) in ("", "Y") else 0
    return next(label for limit, label in _AGE_BANDS if years < limit)


@dataclass
class ManifestRow:
    """One study of the test set: where it is, its reference labels and report, its subgroup attributes."""

    number: int  # the CSV line number (the header is line 1): how the report names a row, never by a path
    study_id: str
    path: Path
    labels: dict[str, int]
    reference: str  # the reference report (findings + impression), "" when the manifest has none
    attributes: dict[str, str] = field(default_factory=dict)
    #: the reference report's impression then findings (the text form of retrieval), "" when none
    report_text: str = ""
    #: the ground truth of a synthetic study (columns ``specs`` and ``regions``), None where the manifest has none
    specs: list[dict[str, Any]] | None = None
    regions: dict[str, list[list[int]]] | None = None


@dataclass
class EvaluationManifest:
    path: Path
    sha256: str
    flags: tuple[str, ...]
    rows: list[ManifestRow]
    has_reports: bool



def _label(value: str, flag: str, number: int) -> int:
    text = value.strip()
    if text in ("0", "1"):
        return int(text)
    if text.lower() in ("true", "false"):
        return int(text.lower() == "true")
    raise ManifestError(f"line {number}: the label of {flag} is {text[:20]!r}, not 0 or 1")


def _json_column(raw: dict[str, str], column: str, number: int) -> Any:
    text = (raw.get(column) or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise ManifestError(f"line {number}: column {column} is not JSON") from None


def read_manifest(path: Path) -> EvaluationManifest:
    """Read a test manifest; a malformed one is a :class:`ManifestError` (missing columns, a label that is not
    0/1, no rows). A row whose file is missing is kept: it is reported as refused, and the rest goes on."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc.__class__.__name__})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))  # a quoted field may hold line breaks (a report)
    columns = set(reader.fieldnames or ())
    if "path" not in columns:
        raise ManifestError(f"{path}: the manifest has no 'path' column")
    flags = tuple(f for f in FINDINGS if f in columns)
    if not flags:
        raise ManifestError(f"{path}: the manifest has no label column of a flag ({', '.join(FINDINGS)})")
    has_reports = bool({"findings", "impression"} & columns)
    rows: list[ManifestRow] = []
    for raw in reader:
        number = reader.line_num  # the physical line a record ends on: what an editor shows
        if not (raw.get("path") or "").strip():
            raise ManifestError(f"line {number}: no path")
        labels = {f: _label(raw.get(f) or "", f, number) for f in flags}
        reference = " ".join(
            f"{part.upper()}: {raw[part].strip()}" for part in ("findings", "impression") if (raw.get(part) or "").strip())
        attributes = {a: value for a in ("sex", "site", "manufacturer", "view")
                      if (value := clean_value(raw.get(a) or ""))}  # empty: read from the DICOM header
        if "sex" in attributes:
            attributes["sex"] = sex_code(attributes["sex"])
        if (raw.get("age") or "").strip():
            attributes["age_band"] = age_band(raw.get("age"))
        rows.append(ManifestRow(number, (raw.get("study_id") or "").strip() or f"line-{number}",
                                path.parent / raw["path"].strip(), labels, reference, attributes,
                                " ".join(t for t in ((raw.get("impression") or "").strip(),
                                                     (raw.get("findings") or "").strip()) if t),
                                _json_column(raw, "specs", number), _json_column(raw, "regions", number)))
    if not rows:
        raise ManifestError(f"{path}: the manifest has no rows")
    return EvaluationManifest(path, file_sha256(path), flags, rows, has_reports)


def _fingerprints(manifest: EvaluationManifest) -> tuple[set[str], dict[str, int]]:
    """The manifest's study ids, and the sha256 of every file it names (a folder: its files) with a row number."""
    digests: dict[str, int] = {}
    for row in manifest.rows:
        files = [row.path] if row.path.is_file() else sorted(p for p in row.path.rglob("*") if p.is_file()) \
            if row.path.is_dir() else []
        for f in files:
            digests.setdefault(file_sha256(f), row.number)
    return {r.study_id for r in manifest.rows if not r.study_id.startswith("line-")}, digests


def check_no_overlap(test: EvaluationManifest, train: EvaluationManifest | None, model_data: dict[str, object]) -> list[str]:
    """Refuse (:class:`ManifestError`) a test set that shares a study with the training data: the same study id
    or the same file bytes as a row of ``train``, or, for a model trained on synthetic data (its manifest's
    ``data``: ``synthetic``, ``data_seed``, ``val_seed``), a study id of a seed it was trained or calibrated on
    (``clinical-mm synth`` names studies ``S<seed>-<index>``). Returns what was checked (empty: nothing could
    be)."""
    checked: list[str] = []
    if model_data.get("synthetic"):
        used = {int(s) for s in (model_data.get("data_seed"), model_data.get("val_seed")) if isinstance(s, int)}
        for row in test.rows:
            m = re.fullmatch(r"S(\d{4,})-\d{5,}", row.study_id)
            if m and int(m.group(1)) in used:
                raise ManifestError(
                    f"the test manifest overlaps the model's training data: line {row.number} is a study of "
                    f"synthetic data seed {int(m.group(1))}, which the model was trained or calibrated on "
                    f"(seeds {sorted(used)}); evaluate on another seed")
        checked.append(f"study ids against the model's synthetic training and validation seeds {sorted(used)}")
    if train is None:
        return checked
    test_ids, test_files = _fingerprints(test)
    train_ids, train_files = _fingerprints(train)
    shared_ids = sorted(test_ids & train_ids)
    shared_files = sorted(set(test_files) & set(train_files))
    if shared_ids or shared_files:
        lines = sorted({r.number for r in test.rows if r.study_id in set(shared_ids)}
                       | {test_files[d] for d in shared_files})
        shown = ", ".join(str(n) for n in lines[:10]) + (" ..." if len(lines) > 10 else "")
        raise ManifestError(
            f"the test manifest overlaps the training manifest: {len(shared_ids)} study id(s) and "
            f"{len(shared_files)} file(s) in both (test manifest lines {shown}); a test set must hold no "
            "training study")
    checked.append(f"study ids and file contents against the training manifest {train.path.name} "
                   f"({len(train.rows)} rows)")
    return checked
