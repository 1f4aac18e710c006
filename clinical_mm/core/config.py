"""Settings: one pydantic-settings class, environment prefix ``CLINICAL_MM_``.

===============================  ===================================  ================================
variable                         meaning                              default
===============================  ===================================  ================================
CLINICAL_MM_MODE                 ``production`` or ``demo``           ``production``
CLINICAL_MM_DATA_DIR             where audit log and spools live      ``./clinical-mm-data``
CLINICAL_MM_MODEL_PATH           model folder (weights + manifest)    the model shipped in the package
CLINICAL_MM_KEY                  pseudonymisation key (hex, >= 32 B)  none: refused outside demo mode
CLINICAL_MM_KEY_FILE             file holding the key (hex)           none
CLINICAL_MM_AUDIT_DB             audit log (SQLite path)              the DATABASE_URL's, or DATA_DIR's
CLINICAL_MM_ACTOR                who the audit log names as actor     ``clinical-mm``
CLINICAL_MM_AUDIT_SIGNING_KEY    Ed25519 key signing the audit log    none (hash chain only)
CLINICAL_MM_AUDIT_ANCHOR_FILE    where signed checkpoints go          none
CLINICAL_MM_AUDIT_SYSLOG         audit repository, syslog over TLS    none
CLINICAL_MM_RETENTION_ORIGINALS  received originals after delivery    ``delete`` (or ``encrypt``)
CLINICAL_MM_DATABASE_URL         serve: postgresql:// URL of state    ``DATA_DIR/service.sqlite``
CLINICAL_MM_JWT_SECRET           serve: HS256 key of bearer JWTs      none (API keys only)
CLINICAL_MM_JWT_PUBLIC_KEY_FILE  serve: PEM key of RS256/ES256 JWTs   none
CLINICAL_MM_JWT_ISSUER           serve: required ``iss`` of JWTs      none (not checked)
CLINICAL_MM_JWT_AUDIENCE         serve: required ``aud`` of JWTs      ``clinical-mm``
CLINICAL_MM_RECOGNIZERS          deid: site PHI recognizers (YAML)    none (the shipped recognizers)
CLINICAL_MM_DEID_TERMS           deid: site allow/deny terms (YAML)   none (no site terms)
CLINICAL_MM_DEID_THRESHOLD       deid: score from which text is PHI   the de-identifier's (0..1)
===============================  ===================================  ================================

``CLINICAL_MM_MAX_INSTANCE_PIXEL_BYTES`` (default 268435456, 256 MiB) and ``CLINICAL_MM_MAX_STUDY_PIXEL_BYTES``
(default 1073741824, 1 GiB): the most bytes the pixels of one instance, and of one study, may decode to, checked
from the header before anything decodes them. ``CLINICAL_MM_RETENTION_WINDOW_HOURS`` (default 72): how long after a
study's delivery its originals go; ``CLINICAL_MM_RETENTION_VAULT_DAYS`` (default none: kept): the vault's rows older
than that are removed.

Unsafe defaults are refused outside demo mode: without a key nothing runs. Demo mode creates a
throwaway key, says so, and keeps it only for the life of the process.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from clinical_mm.core.errors import ConfigurationError
from clinical_mm.core.pixel_limits import DEFAULT_INSTANCE_BYTES, DEFAULT_STUDY_BYTES, PixelLimits

__all__ = ["DEFAULT_MODEL_PATH", "PseudonymKey", "Settings"]

_log = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "weights" / "default"  # clinical_mm/weights/default
_MIN_KEY_BYTES = 32


class PseudonymKey:
    """A secret key for keyed pseudonyms; ``repr`` and ``str`` never show it.

    Parameters
    ----------
    secret
        The raw key bytes (at least 32).
    ephemeral
        True for a throwaway demo key.
    """

    def __init__(self, secret: bytes, *, ephemeral: bool = False) -> None:
        if len(secret) < _MIN_KEY_BYTES:
            raise ConfigurationError(f"the pseudonymisation key must be at least {_MIN_KEY_BYTES} bytes")
        self._secret = secret
        self.ephemeral = ephemeral

    @property
    def secret(self) -> bytes:
        return self._secret

    @cached_property
    def key_id(self) -> str:
        """A public identifier of the key (not reversible): the first 16 hex digits of a hash."""
        return hashlib.sha256(b"clinical-mm key id\x00" + self._secret).hexdigest()[:16]

    @classmethod
    def from_hex(cls, text: str, *, source: str) -> PseudonymKey:
        try:
            return cls(bytes.fromhex(text.strip()))
        except ValueError:
            raise ConfigurationError(f"{source}: the key must be hexadecimal") from None

    def __repr__(self) -> str:
        return f"PseudonymKey(key_id={self.key_id!r}{', ephemeral' if self.ephemeral else ''})"

    __str__ = __repr__


class Settings(BaseSettings):
    """clinical-mm settings, read from ``CLINICAL_MM_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="CLINICAL_MM_", extra="ignore", protected_namespaces=())

    mode: Literal["production", "demo"] = Field("production", description="demo allows a throwaway key")
    data_dir: Path = Field(Path("clinical-mm-data"), description="audit log and working files")
    model_path: Path = Field(DEFAULT_MODEL_PATH, description="model folder: ours (model.safetensors + manifest) "
                             "or a staged BLIP-2 checkpoint (config.json)")
    key: SecretStr | None = Field(None, description="pseudonymisation key, hexadecimal")
    key_file: Path | None = Field(None, description="file holding the pseudonymisation key")
    audit_db: Path | None = Field(None, description="audit log SQLite file (default: the PostgreSQL database of "
                                  "CLINICAL_MM_DATABASE_URL when set, else DATA_DIR/audit.sqlite)")
    actor: str = Field("clinical-mm", description="actor recorded in the audit log")
    audit_signing_key: Path | None = Field(None, description="the Ed25519 private key (PEM, mode 600, outside "
                                           "DATA_DIR) that signs every audit record and checkpoint; make one with "
                                           "clinical-mm audit keygen; none: the hash chain only")
    audit_anchor_file: Path | None = Field(None, description="a file outside DATA_DIR (an append-only mount) that "
                                           "signed checkpoints of the audit chain are appended to")
    audit_anchor_fhir: bool = Field(False, description="serve: also send each signed checkpoint to the FHIR server "
                                    "(CLINICAL_MM_FHIR_URL) as an AuditEvent")
    audit_forward_fhir: bool = Field(False, description="serve, audit forward: send every audit record to the FHIR "
                                     "server (CLINICAL_MM_FHIR_URL) as an IHE BALP AuditEvent")
    audit_syslog: str | None = Field(None, description="serve, audit forward: the audit record repository, HOST:PORT, "
                                     "taking RFC 5424 syslog over TLS (RFC 5425)")
    audit_syslog_ca: Path | None = Field(None, description="the CA certificate (PEM) the syslog server's certificate "
                                         "is checked against (default: the system's CAs)")
    audit_syslog_cert: Path | None = Field(None, description="our client certificate (PEM) when the repository asks "
                                           "for mutual TLS")
    audit_syslog_key: Path | None = Field(None, description="the key of CLINICAL_MM_AUDIT_SYSLOG_CERT")
    audit_anchor_records: int = Field(100, ge=1, description="a checkpoint every this many audit records")
    audit_anchor_seconds: float = Field(300.0, gt=0, description="and at least this often (seconds) while records "
                                        "come in")
    database_url: SecretStr | None = Field(None, description="serve: PostgreSQL URL of the job queue and review state")
    jwt_secret: SecretStr | None = Field(None, description="serve: HS256 key of OAuth2 bearer JWTs")
    jwt_public_key_file: Path | None = Field(None, description="serve: PEM public key of RS256/ES256 bearer JWTs")
    jwt_issuer: str | None = Field(None, description="serve: required iss of bearer JWTs")
    jwt_audience: str = Field("clinical-mm", description="serve: required aud of bearer JWTs")
    fhir_url: str | None = Field(None, description="serve: base URL of the hospital's FHIR R4 server (results go there)")
    fhir_token: SecretStr | None = Field(None, description="serve: bearer token for the FHIR server")
    sr_destination: str | None = Field(None, description="serve: PACS taking the draft as DICOM SR, AET@host:port")
    dicomweb_url: str | None = Field(None, description="serve: the PACS's DICOMweb root, studies are pulled from")
    dicomweb_token: SecretStr | None = Field(None, description="serve: bearer token for the PACS's DICOMweb")
    qr_pacs: str | None = Field(None, description="serve: the PACS studies are pulled from by C-FIND/C-MOVE, "
                                "AET@host:port (instead of DICOMweb)")
    vocabulary: Path | None = Field(None, description="extraction: a vocabulary file (the shipped one's form) "
                                    "added on top of the shipped vocabulary; its words are on every text "
                                    "de-identifier's allow-list too")
    recognizers: Path | None = Field(None, description="deid: a YAML file in presidio's recognizer form that adds "
                                     "PHI recognizers to the text de-identifier's, or removes one (enabled: false)")
    deid_terms: Path | None = Field(None, description="deid: the site's term file (YAML {allow: [...], deny: [term | "
                                    "{term, type}]}): terms the text de-identifier never takes for PHI, and terms "
                                    "it always masks")
    deid_threshold: float | None = Field(None, ge=0.0, le=1.0, description="deid: the final score from which the "
                                         "text de-identifier takes a span for PHI (lower: more recall, less "
                                         "precision); none: the de-identifier's default")
    retention_originals: Literal["delete", "encrypt"] = Field("delete", description="serve, purge: what becomes of a "
                                                              "study's received originals (with their PHI) once it is "
                                                              "delivered and the window has passed: deleted, or "
                                                              "encrypted at rest with a key derived from the "
                                                              "pseudonymisation key")
    retention_window_hours: float = Field(72.0, ge=0, description="serve, purge: hours after a study's delivery "
                                          "before its originals go (the review page shows its image until then)")
    retention_vault_days: float | None = Field(None, gt=0, description="serve, purge: vault rows older than this many "
                                               "days are removed (their results can no longer be re-identified); "
                                               "none: the vault is kept")
    retention_check_seconds: float = Field(60.0, gt=0, description="serve: how often the retention policy is "
                                           "applied")
    monitor_thresholds: Path | None = Field(None, description="serve, monitor: a YAML file of the monitoring's alert "
                                            "thresholds (min_agreement, max_refusal_rate, max_drift, baseline_weeks, "
                                            "min_studies); none: the defaults")
    max_instance_pixel_bytes: int = Field(DEFAULT_INSTANCE_BYTES, ge=1, description="analyze, deid dicom, serve: "
                                          "the most bytes one instance's pixels may decode to (checked from the "
                                          "header, before decoding); a larger one is refused")
    max_study_pixel_bytes: int = Field(DEFAULT_STUDY_BYTES, ge=1, description="analyze, serve: the most bytes a "
                                       "study's pixels may decode to, all instances together")

    @property
    def pixel_limits(self) -> PixelLimits:
        """The limits on decoded pixel bytes, per instance and per study."""
        return PixelLimits(self.max_instance_pixel_bytes, self.max_study_pixel_bytes)

    @property
    def vault_path(self) -> Path:
        """The re-identification vault: DATA_DIR/vault.sqlite."""
        return self.data_dir / "vault.sqlite"

    @property
    def service_database(self) -> Path | str:
        """The service database: CLINICAL_MM_DATABASE_URL (PostgreSQL) or DATA_DIR/service.sqlite."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return self.data_dir / "service.sqlite"

    @property
    def audit_path(self) -> Path:
        return self.audit_db if self.audit_db is not None else self.data_dir / "audit.sqlite"

    def load_key(self) -> PseudonymKey:
        """Return the pseudonymisation key, or refuse to run without one outside demo mode."""
        if self.key is not None:
            return PseudonymKey.from_hex(self.key.get_secret_value(), source="CLINICAL_MM_KEY")
        if self.key_file is not None:
            try:
                text = self.key_file.read_text(encoding="ascii")
            except OSError as exc:
                raise ConfigurationError(f"{self.key_file}: cannot read key file ({exc.strerror})") from None
            return PseudonymKey.from_hex(text, source=str(self.key_file))
        if self.mode == "demo":
            _log.warning("demo mode: using a throwaway pseudonymisation key; pseudonyms will not be re-linkable")
            return PseudonymKey(secrets.token_bytes(32), ephemeral=True)
        raise ConfigurationError(
            "no pseudonymisation key: set CLINICAL_MM_KEY or CLINICAL_MM_KEY_FILE "
            "(or CLINICAL_MM_MODE=demo for a throwaway key)"
        )
