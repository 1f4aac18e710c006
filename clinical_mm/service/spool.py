"""The spool: where received instances wait, durably, until their study is analysed.

An instance is written to a temporary file, fsynced and renamed, then recorded in the service database;
only then is its receipt acknowledged (C-STORE success, STOW-RS success). Files are named by keyed
pseudonyms of their UIDs, so no original identifier appears in a path, the database or a log line.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from clinical_mm.core.errors import DicomReadError
from clinical_mm.deid.pseudonymizer import Pseudonymizer
from clinical_mm.service.store import ServiceStore

__all__ = ["Spool"]


class Spool:
    """Received instances under ``root``, one folder per pseudonymous study, each recorded in ``store``."""

    def __init__(self, root: Path, store: ServiceStore, pseudo: Pseudonymizer) -> None:
        self.root = root
        self.store = store
        self.pseudo = pseudo

    def put(self, data: bytes, sop_uid: str | None = None, study_uid: str | None = None, *,
            source: str = "") -> tuple[str, str, bool]:
        """Store one PS3.10 file; returns (pseudonymous SOP UID, pseudonymous study UID, new). ``source`` names
        where it came from (a calling AE title, ``stow-rs``, ``pull``): the site of the monitoring. Raises
        :class:`DicomReadError` for bytes that are not a DICOM file with SOP and Study Instance UIDs, and
        OSError or OutputError when it cannot be made durable (the sender must retry)."""
        if sop_uid is None or study_uid is None:
            import pydicom

            try:
                ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
                sop_uid, study_uid = str(ds.SOPInstanceUID), str(ds.StudyInstanceUID)
            except Exception as exc:  # noqa: BLE001 - pydicom raises many types for malformed input
                raise DicomReadError(f"not a DICOM file with SOP and Study Instance UIDs ({exc.__class__.__name__})",
                                     reason="malformed DICOM") from None
        sop_key, study_key = self.pseudo.uid(sop_uid), self.pseudo.uid(study_uid)
        path = self.root / study_key / f"{sop_key}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        new = self.store.add_instance(sop_key, study_key, path, source)
        if not new and self.store.originals(study_key) in ("deleted", "encrypted"):
            path.unlink(missing_ok=True)  # sent again after the retention policy removed it: not kept again
        return sop_key, study_key, new
