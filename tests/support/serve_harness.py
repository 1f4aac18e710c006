"""The `clinical-mm serve` test harness: serve in a subprocess on 127.0.0.1, a callback receiver, storescu."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from clinical_mm.synth.study_synthesizer import SynthStudy

KEY_HEX = "5a" * 32
JWT_SECRET = "jwt-test-secret-of-at-least-32-characters"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """A callback receiver on 127.0.0.1 that records what it gets; ``down`` makes it answer 503."""

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, str], bytes]] = []
        self.down = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.down:
                    self.send_response(503)
                else:
                    receiver.events.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/triage"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


class Service:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port, self.dicom_port = free_port(), free_port()
        self.env = {**os.environ, "CLINICAL_MM_DATA_DIR": str(data_dir), "CLINICAL_MM_KEY": KEY_HEX,
                    "CLINICAL_MM_JWT_SECRET": JWT_SECRET, "CLINICAL_MM_JWT_ISSUER": "https://idp.test"}
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "serve.log"

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "clinical_mm.cli", *args], env=self.env, capture_output=True,
                             check=True, timeout=120)
        return out.stdout.decode().strip()

    def start(self, *roles: str) -> None:
        """``serve`` (its ``roles`` only, when given), ready: its API answers, or a worker's log says it serves."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "clinical_mm.cli", "-v", "serve", "--port", str(self.port), "--dicom-port",
                 str(self.dicom_port), "--allow-aet", "TESTPACS", "--allow-aet", "ORTHANC", "--quiet-period", "0.5",
                 *(arg for role in roles for arg in ("--role", role))],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if roles and "api" not in roles:
                    if "serving" in self.log.read_text(errors="replace"):
                        return
                elif httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.3)
        raise AssertionError("serve did not become ready")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def storescu(port: int, files: list[Path], aet: str = "TESTPACS") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["storescu", "-aet", aet, "-aec", "CLINICALMM", "127.0.0.1", str(port), *map(str, files)],
                          capture_output=True, timeout=120)


def files_of(root: Path, study: SynthStudy) -> list[Path]:
    return [root / f for f in study.files]


def wait_for(predicate: Any, timeout: float = 120.0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out")
