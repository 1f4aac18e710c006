"""``clinical-mm fetch``: studies pulled from the PACS by DICOMweb (QIDO-RS, WADO-RS) or DIMSE (C-FIND, C-MOVE)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from clinical_mm.audit.audit_record import AuditRecord, sha256_hex
from clinical_mm.cli.scaffold import audit_sink, fail, reported_errors
from clinical_mm.core.config import Settings
from clinical_mm.core.errors import ClinicalMMError, ConfigurationError, RemoteRefusedError

if TYPE_CHECKING:  # the clients load httpx and pynetdicom: in the command, not at start-up
    from clinical_mm.connectors.dicomweb_client import DicomWebClient
    from clinical_mm.connectors.dimse_client import DimseClient

__all__ = ["fetch"]


def _client(settings: Settings, dicomweb_url: str | None, pacs: str | None,
            ae_title: str) -> DicomWebClient | DimseClient:
    """The client of the PACS named by --dicomweb or --pacs, else by the settings (exactly one of the two)."""
    if not (dicomweb_url or pacs):
        dicomweb_url, pacs = settings.dicomweb_url, settings.qr_pacs
        if dicomweb_url and pacs:
            raise ConfigurationError("both CLINICAL_MM_DICOMWEB_URL and CLINICAL_MM_QR_PACS are set: give "
                                     "--dicomweb or --pacs")
    if not (dicomweb_url or pacs):
        raise ConfigurationError("no PACS to fetch from: give --dicomweb or --pacs (or set "
                                 "CLINICAL_MM_DICOMWEB_URL or CLINICAL_MM_QR_PACS)")
    from clinical_mm.connectors.dicomweb_client import DicomWebClient
    from clinical_mm.connectors.dimse_client import DicomDestination, DimseClient

    if dicomweb_url:
        token = settings.dicomweb_token.get_secret_value() if settings.dicomweb_token else None
        return DicomWebClient(dicomweb_url, token=token)
    return DimseClient(DicomDestination.parse(str(pacs)), calling_ae_title=ae_title)


def _fetch_by_dicomweb(client: DicomWebClient, folders: dict[str, Path]) -> int:
    """WADO-RS each study into its folder; the number of instances written."""
    written = 0
    for uid, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(client.retrieve_study(uid), 1):
            (folder / f"{i:04d}.dcm").write_bytes(data)
            written += 1
    return written


def _fetch_by_move(client: DimseClient, folders: dict[str, Path], ae_title: str, host: str, port: int) -> int:
    """C-MOVE each study to a Storage SCP of our own that writes it into its folder; the number written.
    Only the PACS's AE title may store, and only instances of the studies asked for are taken."""
    from clinical_mm.connectors.dimse_client import StoreReceiver

    counts = dict.fromkeys(folders, 0)

    def accept(study_uid: str, data: bytes) -> bool:
        if study_uid not in folders:
            return False
        folders[study_uid].mkdir(parents=True, exist_ok=True)
        counts[study_uid] += 1
        (folders[study_uid] / f"{counts[study_uid]:04d}.dcm").write_bytes(data)
        return True

    with StoreReceiver(ae_title, host, port, calling_ae_title=client.pacs.ae_title, accept=accept):
        for uid in folders:
            outcome = client.move_study(uid, ae_title)
            if not counts[uid]:
                raise RemoteRefusedError(f"the PACS reports {outcome.completed} instances moved to {ae_title}, "
                                         f"but none reached {host}:{port} (does the PACS have this address for "
                                         f"{ae_title}?)")
    return sum(counts.values())


@click.command()
@click.option("--study-uid", help="StudyInstanceUID of the study to fetch.")
@click.option("--accession", help="Accession number whose studies to fetch.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder the studies are written to (study-1/0001.dcm, ...); they hold PHI until de-identified.")
@click.option("--dicomweb", "dicomweb_url", help="The PACS's DICOMweb root (default: CLINICAL_MM_DICOMWEB_URL).")
@click.option("--pacs", "pacs", help="The PACS to query and retrieve from by C-FIND/C-MOVE, AET@host:port "
              "(default: CLINICAL_MM_QR_PACS).")
@click.option("--aet", "ae_title", default="CLINICALMM", show_default=True,
              help="C-MOVE: our AE title, the calling AE and the move destination (the PACS must know it).")
@click.option("--store-host", default="127.0.0.1", show_default=True,
              help="C-MOVE: address the Storage SCP taking the study listens on (one the PACS reaches).")
@click.option("--store-port", type=click.IntRange(0, 65535), default=11113, show_default=True,
              help="C-MOVE: port of that Storage SCP (the PACS's entry for --aet must name it).")
def fetch(study_uid: str | None, accession: str | None, out: Path, dicomweb_url: str | None, pacs: str | None,
          ae_title: str, store_host: str, store_port: int) -> None:
    """Pull studies from the PACS into OUT, for `clinical-mm analyze OUT` or `deid dicom`: by DICOMweb (QIDO-RS
    finds them, WADO-RS retrieves them) or by DIMSE (C-FIND finds them, C-MOVE has the PACS send them to a
    Storage SCP this command runs while it waits). Audited (counts and a hash of the request, no identifier)."""
    with reported_errors():
        try:
            if (study_uid is None) == (accession is None):
                raise ConfigurationError("give exactly one of --study-uid and --accession")
            if dicomweb_url and pacs:
                raise ConfigurationError("give one of --dicomweb and --pacs")
            from clinical_mm.connectors.dicomweb_client import DicomWebClient

            settings = Settings()
            client = _client(settings, dicomweb_url, pacs, ae_title)
            request_hash = sha256_hex(f"{study_uid or ''}|{accession or ''}")
            with audit_sink(settings) as sink:
                try:
                    uids = client.find_studies(study_uid=study_uid, accession=accession)
                    folders = {uid: out / f"study-{n}" for n, uid in enumerate(uids, 1)}
                    if isinstance(client, DicomWebClient):
                        written = _fetch_by_dicomweb(client, folders)
                    else:
                        written = _fetch_by_move(client, folders, ae_title, store_host, store_port)
                except ClinicalMMError as exc:
                    sink.append(AuditRecord(settings.actor, "fetch", "failed", input_hash=request_hash,
                                            detail=exc.__class__.__name__))
                    raise
                finally:
                    client.close()
                sink.append(AuditRecord(settings.actor, "fetch", "ok", input_hash=request_hash,
                                        detail=f"{len(uids)} studies, {written} instances"))
        except OSError as exc:
            raise ConfigurationError(f"{out}: cannot write ({exc.strerror})") from exc
    if not uids:
        fail(ConfigurationError("the PACS holds no study for that request"))
    click.echo(f"fetched {written} instances of {len(uids)} stud{'y' if len(uids) == 1 else 'ies'} into {out}")
