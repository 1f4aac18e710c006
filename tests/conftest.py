"""Shared fixtures: a small synthetic study set, keys, the shipped model, a PostgreSQL server and a FHIR server
on loopback. A test that starts another process or server is marked ``integration``, one that trains a model or
runs the demo ``slow``: ``pytest -m "not slow and not integration"`` runs the rest; ``make test`` runs all."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from support.fhir_harness import FhirServer
from support.serve_harness import Receiver, free_port

from clinical_mm.core.config import DEFAULT_MODEL_PATH, PseudonymKey
from clinical_mm.synth.study_synthesizer import StudySynthesizer, SynthStudy

# property-based tests draw the same examples on every CI run (CI is set there), so a red build is reproducible
# and no build turns red on a new random draw; elsewhere each run draws new examples and may find a new case
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    """A callback receiver on 127.0.0.1 that records what it is sent."""
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SynthStudy]]:
    out = tmp_path_factory.mktemp("synth")
    studies = StudySynthesizer(44).write(6, out, progress=False, workers=1)
    return out, studies


@pytest.fixture()
def key() -> PseudonymKey:
    return PseudonymKey(bytes(range(32)))


@pytest.fixture(scope="session")
def model_path() -> Path:
    if not (DEFAULT_MODEL_PATH / "manifest.json").is_file():
        pytest.fail("the shipped model is missing from clinical_mm/weights/default")
    return DEFAULT_MODEL_PATH


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return str(versions[0] / name) if versions and (versions[0] / name).exists() else None


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries are installed by make test (Debian postgresql)")
    # its own folder under /tmp: pytest's temporary folders are private to root, and the server may not run as root
    root = Path(tempfile.mkdtemp(prefix="clinical-mm-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: use Debian's postgres user
        user = pwd.getpwnam("postgres")
        for path in (root, sock):
            os.chown(path, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*run_as, initdb, "-D", str(data), "-A", "trust", "-U", "cmm", "--no-sync"], check=True,
                   capture_output=True)
    subprocess.run([*run_as, pg_ctl, "-D", str(data), "-l", str(root / "pg.log"), "-w", "-o",
                    f"-h 127.0.0.1 -p {port} -k {sock} -F", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://cmm@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def fhir(tmp_path: Path) -> Iterator[FhirServer]:
    """A FHIR server on 127.0.0.1, not started (a test may start it late: a server that was down)."""
    server = FhirServer(free_port(), tmp_path / "fhir.log")
    yield server
    server.stop()
