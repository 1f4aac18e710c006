"""``clinical-mm serve`` and ``clinical-mm keys``: the service and the API keys it accepts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from clinical_mm.cli.scaffold import fail, reported_errors
from clinical_mm.core.config import Settings
from clinical_mm.core.errors import ConfigurationError

if TYPE_CHECKING:
    from clinical_mm.service.store import ServiceStore

__all__ = ["keys", "serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address for HTTP and DICOM.")
@click.option("--port", type=int, default=8000, show_default=True, help="HTTP port.")
@click.option("--dicom-port", type=int, default=11112, show_default=True, help="DICOM Storage SCP port.")
@click.option("--ae-title", default="CLINICALMM", show_default=True, help="Our AE title.")
@click.option("--allow-aet", "allowed_aets", multiple=True, help="Calling AE title allowed to send (repeatable).")
@click.option("--callback-host", "callback_hosts", multiple=True,
              help="Host callbacks may go to (repeatable; default 127.0.0.1 and localhost).")
@click.option("--quiet-period", type=float, default=2.0, show_default=True,
              help="Seconds without a new instance after which a study is complete and queued.")
@click.option("--public-url", help="Base URL callback receivers use to reach the API (default http://HOST:PORT).")
@click.option("--model", "model_path", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Model folder: a clinical-mm model (manifest.json) or a staged BLIP-2 checkpoint (config.json "
                   "of model_type blip-2) (default: CLINICAL_MM_MODEL_PATH or the shipped model).")
@click.option("--role", "roles", multiple=True, type=click.Choice(["api", "listener", "worker"]),
              help="Run only this part (repeatable), beside other serve processes on one PostgreSQL "
                   "(CLINICAL_MM_DATABASE_URL) and one shared data folder: api (HTTP API, audit forwarding), listener "
                   "(DICOM), worker (analysis, callbacks, pulls, retention; as many as needed, added or removed while "
                   "running). Default: all of them in this one process.")
def serve(host: str, port: int, dicom_port: int, ae_title: str, allowed_aets: tuple[str, ...],
          callback_hosts: tuple[str, ...], quiet_period: float, public_url: str | None, model_path: Path | None,
          roles: tuple[str, ...]) -> None:
    """Run the service: HTTP API, DICOM listener (C-ECHO, C-STORE), job queue and signed triage callbacks.

    State lives in CLINICAL_MM_DATA_DIR (service.sqlite, spool/, results/, audit.sqlite); a restart picks up
    every study left in the queue. Create API keys with `clinical-mm keys create --role ROLE`.
    """
    from clinical_mm.service.server import ROLES, ServeOptions, run_server

    with reported_errors():
        run_server(Settings(), ServeOptions(
            host=host, port=port, dicom_port=dicom_port, ae_title=ae_title, allowed_aets=list(allowed_aets),
            callback_hosts=list(callback_hosts) or ["127.0.0.1", "localhost"], quiet_period_s=quiet_period,
            model_path=model_path, public_url=public_url, roles=frozenset(roles) or ROLES))


def _store() -> ServiceStore:
    """The service database of the settings (the service loads FastAPI and the database drivers: not at start-up)."""
    from clinical_mm.service.store import ServiceStore

    return ServiceStore(Settings().service_database)


@click.group()
def keys() -> None:
    """API keys of the service (stored hashed in CLINICAL_MM_DATA_DIR/service.sqlite)."""


@keys.command("create")
@click.option("--role", type=click.Choice(["pacs", "radiologist", "auditor", "admin"]), required=True)
@click.option("--name", default="", help="Who holds the key (shown as the signer of the reports it signs).")
def keys_create(role: str, name: str) -> None:
    """Create an API key; it is printed once (key id on stderr, key on stdout)."""
    with reported_errors():
        store = _store()
        key_id, key = store.create_api_key(role, name)
        store.close()
    click.echo(f"key id {key_id} ({role})", err=True)
    click.echo(key)


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke an API key by its id."""
    with reported_errors():
        store = _store()
        ok = store.revoke_api_key(key_id)
        store.close()
    if not ok:
        fail(ConfigurationError(f"no such key id {key_id}"))
    click.echo(f"revoked {key_id}")
