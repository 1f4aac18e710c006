"""docker/compose.yaml cannot be run here (no Docker daemon), so its consistency with what the tests run is
checked: every setting it gives serve exists, the AE titles, hosts and ports serve and Orthanc give each other
agree, and Orthanc's image carries the configuration and scripts the integration tests use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from clinical_mm.connectors.dimse_client import DicomDestination
from clinical_mm.core.config import Settings
from clinical_mm.service.server import ServeOptions

DOCKER = Path(__file__).resolve().parent.parent / "docker"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_when_compose_configures_serve_then_every_variable_is_a_setting_and_the_four_services_are_there() -> None:
    compose = _compose()
    assert set(compose["services"]) == {"serve", "postgres", "orthanc", "hapi"}
    env = compose["services"]["serve"]["environment"]
    fields = {f"CLINICAL_MM_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields, set(env) - fields
    assert env["CLINICAL_MM_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env[
        "CLINICAL_MM_DATABASE_URL"]
    assert env["CLINICAL_MM_FHIR_URL"].startswith("http://hapi:8080/")
    assert not (env.get("CLINICAL_MM_DICOMWEB_URL") and env.get("CLINICAL_MM_QR_PACS"))  # serve refuses both


def test_when_serve_and_orthanc_name_each_other_then_ae_titles_hosts_and_ports_agree() -> None:
    compose = _compose()
    serve = compose["services"]["serve"]
    orthanc = json.loads((DOCKER / "orthanc/orthanc.json").read_text())
    # Orthanc -> serve: the modality it forwards to and moves to is serve's AE title, service name and DICOM port
    aet, host, port = orthanc["DicomModalities"]["clinicalmm"]
    command = serve["command"]
    ae_title = _option(command, "--ae-title") if "--ae-title" in command else ServeOptions().ae_title
    assert (aet, host, port) == (ae_title, "serve", int(_option(command, "--dicom-port")))
    assert orthanc["DicomAet"] in [command[i + 1] for i, a in enumerate(command) if a == "--allow-aet"]
    # serve -> Orthanc: SR destination and C-FIND/C-MOVE source are Orthanc's AE title, service name and port
    for variable in ("CLINICAL_MM_SR_DESTINATION", "CLINICAL_MM_QR_PACS"):
        destination = DicomDestination.parse(serve["environment"][variable])
        assert destination == DicomDestination(orthanc["DicomAet"], "orthanc", orthanc["DicomPort"]), variable
    published = {p.rsplit(":", 1)[1] for p in compose["services"]["orthanc"]["ports"]}
    assert {str(orthanc["DicomPort"]), str(orthanc["HttpPort"])} <= published


def test_when_orthanc_is_built_then_it_carries_the_configuration_and_scripts_the_tests_run() -> None:
    dockerfile = (DOCKER / "orthanc/Dockerfile").read_text()
    orthanc = json.loads((DOCKER / "orthanc/orthanc.json").read_text())
    for name in ("orthanc.json", "forward-stable-studies.lua", "notify-stable-studies.lua"):
        assert (DOCKER / "orthanc" / name).is_file()
        assert f"COPY {name} /etc/orthanc/{name}" in dockerfile
    assert all(script.startswith("/etc/orthanc/") and (DOCKER / "orthanc" / Path(script).name).is_file()
               for script in orthanc["LuaScripts"])
    assert "orthanc-dicomweb" in dockerfile and orthanc["DicomWeb"]["Enable"] is True


def test_when_compose_splits_serve_then_api_listener_and_workers_share_one_database_and_data_volume() -> None:
    split: dict[str, Any] = yaml.safe_load((DOCKER / "compose.scale-out.yaml").read_text())
    services = split["services"]
    roles = {name: _option(s["command"], "--role") for name, s in services.items() if "command" in s}
    assert roles == {"api": "api", "listener": "listener", "worker": "worker"}
    fields = {f"CLINICAL_MM_{name.upper()}" for name in Settings.model_fields}
    for name in roles:
        env = services[name]["environment"]
        assert set(env) <= fields and env["CLINICAL_MM_DATABASE_URL"].startswith("postgresql://")
        assert services[name]["volumes"] == ["data:/data"]
    assert services["worker"]["deploy"]["replicas"] == "${WORKERS:-2}"
    assert services["serve"]["profiles"] == ["single"]  # the one-process serve of compose.yaml is off
    # the listener takes what Orthanc sends: its port is the one compose.yaml's serve gave Orthanc
    single = _compose()["services"]["serve"]["command"]
    assert _option(services["listener"]["command"], "--dicom-port") == _option(single, "--dicom-port")
