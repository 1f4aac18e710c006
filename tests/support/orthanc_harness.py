"""Debian's Orthanc (with its DICOMweb plugin) for the tests, bound to 127.0.0.1 only.

Orthanc 1.10 has no bind-address option: an LD_PRELOAD shim (tests/support/loopback_bind.c, compiled here
with gcc) rewrites its listening sockets' addresses to loopback, and /proc/net/tcp is checked to prove it.
The configuration is the shipped one (docker/orthanc/orthanc.json and its Lua script) with the test's ports
and folders.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
from support.serve_harness import free_port, wait_for

REPO = Path(__file__).resolve().parent.parent.parent
LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1 as /proc/net/tcp writes them


def orthanc_available() -> bool:
    return shutil.which("Orthanc") is not None and shutil.which("gcc") is not None


def listening_on(port: int) -> set[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp and tcp6), as hex as the kernel writes them."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


class Orthanc:
    """Orthanc with the shipped configuration; ``modalities`` and ``extra`` override parts of it, ``env`` is added
    to its environment. ``stop()`` then ``start()`` again: a PACS that was down and is back, with its studies."""

    def __init__(self, root: Path, *, modalities: dict[str, list[Any]], extra: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.root, self.env = root, env or {}
        self.http_port, self.dicom_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.shim = root / "loopback_bind.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(self.shim),
                        str(REPO / "tests/support/loopback_bind.c"), "-ldl"], check=True, capture_output=True)
        config = json.loads((REPO / "docker/orthanc/orthanc.json").read_text())
        config.update({"StorageDirectory": str(root / "orthanc-db"), "IndexDirectory": str(root / "orthanc-db"),
                       "HttpPort": self.http_port, "DicomPort": self.dicom_port, "RemoteAccessAllowed": False,
                       "StableAge": 1, "LuaScripts": [str(REPO / "docker/orthanc/forward-stable-studies.lua")],
                       "DicomModalities": modalities, **(extra or {})})
        self.config = root / "orthanc.json"
        self.config.write_text(json.dumps(config))
        self.log = root / "orthanc.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Orthanc:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(["Orthanc", str(self.config)], stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, **self.env, "LD_PRELOAD": str(self.shim)})
        wait_for(lambda: httpx.get(f"{self.base}/system", timeout=2).status_code == 200
                 if listening_on(self.http_port) else None, 60)
        assert listening_on(self.http_port) | listening_on(self.dicom_port) <= LOOPBACK
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def get(self, path: str) -> Any:
        r = httpx.get(f"{self.base}{path}", timeout=30)
        r.raise_for_status()
        return r.json()

    def storescu(self, files: list[Path]) -> None:
        sent = subprocess.run(["storescu", "-aet", "TESTPACS", "-aec", "ORTHANC", "127.0.0.1", str(self.dicom_port),
                               *map(str, files)], capture_output=True, timeout=120)
        assert sent.returncode == 0, sent.stderr.decode()
