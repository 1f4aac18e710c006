"""The one exception tree of clinical-mm.

Every error the package raises on purpose derives from :class:`ClinicalMMError`;
third-party exceptions are translated once, at the boundary that calls the library.
Messages name the file, tag or field and the problem, never a PHI value::

    ClinicalMMError
    ├── ConfigurationError          settings missing or unsafe (no key outside demo mode, ...)
    ├── InputError                  something handed to us cannot be used
    │   ├── DicomReadError          not a readable DICOM PS3.10 file
    │   ├── UnsupportedStudyError   readable, but not what the model is for (modality, body part, no pixels)
    │   └── ManifestError           a study manifest is malformed
    ├── DeidentificationError       a record could not be de-identified safely; it goes no further
    │   └── QuarantinedError        a file that cannot be verified PHI-free (e.g. burned-in text unchecked)
    ├── ReidentificationError       a pseudonym cannot be mapped back (not issued under this key)
    ├── ModelError                  the model cannot be loaded or run
    │   └── CheckpointError         weights missing, corrupt, or not matching their manifest
    ├── OutputError                 a result could not be written (FHIR validation, file system)
    ├── ConnectorError              a remote system (PACS, FHIR server) could not be used
    │   ├── RemoteUnavailableError  unreachable, timed out or busy after the retries: queued work tries again later
    │   └── RemoteRefusedError      the remote refused the request or answered with something invalid
    └── AuditError                  the audit log cannot be written or read
        └── AuditChainError         the hash chain is broken (tampering or corruption)
"""

from __future__ import annotations

__all__ = [
    "AuditChainError",
    "AuditError",
    "CheckpointError",
    "ClinicalMMError",
    "ConfigurationError",
    "ConnectorError",
    "DeidentificationError",
    "DicomReadError",
    "InputError",
    "ManifestError",
    "ModelError",
    "OutputError",
    "QuarantinedError",
    "ReidentificationError",
    "RemoteRefusedError",
    "RemoteUnavailableError",
    "UnsupportedStudyError",
]


class ClinicalMMError(Exception):
    """Root of every error clinical-mm raises on purpose."""


class ConfigurationError(ClinicalMMError):
    """Settings are missing, inconsistent or unsafe for the chosen mode."""


class InputError(ClinicalMMError):
    """An input handed to clinical-mm cannot be used.

    ``reason`` is the problem without the file name, for records that must not carry paths.
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class DicomReadError(InputError):
    """A file is not a readable DICOM PS3.10 file."""


class UnsupportedStudyError(InputError):
    """A readable study that the model is not for (modality, body part, view, no pixel data)."""


class ManifestError(InputError):
    """A study manifest is malformed."""


class DeidentificationError(ClinicalMMError):
    """A record could not be de-identified safely and must not go further."""


class QuarantinedError(DeidentificationError):
    """A file that cannot be verified free of PHI; it is quarantined with the reason, never passed on."""


class ReidentificationError(ClinicalMMError):
    """A pseudonym cannot be mapped back: this key never issued it, or the vault row is damaged."""


class ModelError(ClinicalMMError):
    """The model cannot be loaded or run."""


class CheckpointError(ModelError):
    """Checkpoint files are missing, corrupt or do not match their manifest."""


class OutputError(ClinicalMMError):
    """A result could not be produced or written."""


class ConnectorError(ClinicalMMError):
    """A remote system (PACS, FHIR server) could not be used. Messages name the system, the interaction and
    the status, never a value from the request or the answer."""


class RemoteUnavailableError(ConnectorError):
    """The remote is unreachable, timed out or busy (429, 5xx) after the retries; queued work tries again later."""


class RemoteRefusedError(ConnectorError):
    """The remote refused the request (4xx other than 429) or answered with something invalid; retrying the
    same request will not help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuditError(ClinicalMMError):
    """The audit log cannot be written or read."""


class AuditChainError(AuditError):
    """The audit hash chain is broken at a given record."""

    def __init__(self, message: str, record_id: int) -> None:
        super().__init__(message)
        self.record_id = record_id
