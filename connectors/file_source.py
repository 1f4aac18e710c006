"""Studies from the file system: one DICOM file, a folder (searched recursively) or a DICOMDIR.

Headers are read first (without pixel data) to group instances into studies by StudyInstanceUID;
a study's full datasets are read only when it is processed. A file that is not readable DICOM, or
has no StudyInstanceUID, becomes a refused item with its reason; the rest of the batch goes on.
Paths are reported relative to the root that was given (the form of a manifest ``path``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from clinical_mm.core.errors import DicomReadError, InputError

__all__ = ["FileStudySource", "SourceStudy", "first_header"]

_SKIP_SUFFIXES = {".csv", ".json", ".jsonl", ".txt", ".md", ".png", ".jpg", ".html", ".log", ".sqlite"}
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"


@dataclass
class SourceStudy:
    """One study found under the root: its files, or the reason it cannot be read."""

    key: str  # the original StudyInstanceUID: PHI-adjacent, never logged or written out
    files: list[Path] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # paths relative to the root
    error: str | None = None

    @property
    def source(self) -> str:
        return self.sources[0] if self.sources else ""

    def load(self) -> tuple[list[tuple[str, Path, Dataset]], list[tuple[str, str]]]:
        """Read the full datasets (with pixel data): the readable ones, and (source, reason) for the others."""
        loaded, failed = [], []
        for path, rel in zip(self.files, self.sources, strict=True):
            try:
                loaded.append((rel, path, _read(path, rel, pixels=True)))
            except DicomReadError as exc:
                failed.append((rel, exc.reason))
        return loaded, failed


def first_header(paths: Iterable[Path], tags: list[str]) -> Dataset | None:
    """The elements ``tags`` of the first of ``paths`` that reads as DICOM (no pixel data read); None when none
    does (the pipeline refuses such files with their reasons)."""
    for path in paths:
        try:
            return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=tags)
        except Exception:  # noqa: BLE001 - pydicom raises many types on what is not DICOM
            continue
    return None


def _read(path: Path, rel: str, pixels: bool) -> Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=not pixels)
    except InvalidDicomError:
        reason = "not a DICOM PS3.10 file (no DICM preamble or file meta)"
    except (OSError, EOFError) as exc:
        reason = f"cannot be read ({exc.__class__.__name__})"
    except Exception as exc:  # pydicom raises many types on malformed content
        reason = f"malformed DICOM ({exc.__class__.__name__})"
    raise DicomReadError(f"{rel}: {reason}", reason=reason)


class FileStudySource:
    """Finds the studies under ``root`` (a file, a folder or a DICOMDIR).

    Parameters
    ----------
    root
        The path given by the user.
    """

    def __init__(self, root: Path) -> None:
        if not root.exists():
            raise InputError(f"{root}: no such file or folder")
        self.root = root
        self.base = root if root.is_dir() else root.parent

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.base).as_posix()
        except ValueError:
            return path.name

    def _files(self) -> Iterator[Path]:
        root = self.root
        if root.is_file():
            if root.name.upper() == "DICOMDIR" or self._is_dicomdir(root):
                yield from self._dicomdir_files(root)
            else:
                yield root
            return
        top_dir = root / "DICOMDIR"
        if top_dir.is_file():
            yield from self._dicomdir_files(top_dir)
            return
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.name.startswith(".") or path.suffix.lower() in _SKIP_SUFFIXES or path.name.upper() == "DICOMDIR":
                continue
            yield path

    @staticmethod
    def _is_dicomdir(path: Path) -> bool:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["MediaStorageSOPClassUID"])
        except Exception:  # not DICOM at all: it will be refused when read as an instance
            return False
        return str(ds.file_meta.get("MediaStorageSOPClassUID", "")) == _DICOMDIR_CLASS

    def _dicomdir_files(self, path: Path) -> Iterator[Path]:
        try:
            ddir = pydicom.dcmread(path)
            records = list(ddir.DirectoryRecordSequence)
        except Exception as exc:  # malformed DICOMDIR
            raise DicomReadError(f"{self._rel(path)}: malformed DICOMDIR ({exc.__class__.__name__})") from None
        for rec in records:
            if "ReferencedFileID" in rec and str(rec.get("DirectoryRecordType", "")) == "IMAGE":
                parts = rec.ReferencedFileID
                parts = [parts] if isinstance(parts, str) else list(parts)
                yield path.parent.joinpath(*parts)

    def studies(self) -> list[SourceStudy]:
        """All studies in a stable order (by first file path), and one refused item per unreadable file."""
        groups: dict[str, SourceStudy] = {}
        refused: list[SourceStudy] = []
        for path in self._files():
            rel = self._rel(path)
            try:
                if not path.is_file():
                    raise DicomReadError(f"{rel}: referenced file is missing", reason="referenced file is missing")
                ds = _read(path, rel, pixels=False)
            except DicomReadError as exc:
                refused.append(SourceStudy(key="", sources=[rel], error=exc.reason))
                continue
            uid = str(ds.get("StudyInstanceUID", ""))
            if not uid:
                refused.append(SourceStudy(key="", sources=[rel], error="no StudyInstanceUID (0020,000D)"))
                continue
            study = groups.setdefault(uid, SourceStudy(key=uid))
            study.files.append(path)
            study.sources.append(rel)
        out = list(groups.values()) + refused
        out.sort(key=lambda s: s.source)
        return out
