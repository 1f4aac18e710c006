"""`serve` end to end: time from C-STORE completion (dcmtk's storescu returns) to the signed triage callback
received by a subscriber on 127.0.0.1, per study, with the default model.

Starts `clinical-mm serve` in a fresh data folder, registers a callback receiver, sends N synthetic studies
one after the other (each its own association, as a PACS forwarding a study does) and prints p50, p95
and the maximum. Needs dcmtk (storescu).

    python benchmarks/serve_latency.py [--n 50] [--seed 46]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from clinical_mm.synth.study_synthesizer import StudySynthesizer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--seed", type=int, default=46)
    args = parser.parse_args()
    if shutil.which("storescu") is None:
        sys.exit("storescu (dcmtk) is needed: apt-get install dcmtk")
    arrivals: dict[str, float] = {}
    cond = threading.Condition()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with cond:
                arrivals[json.loads(body)["study"]["id"]] = time.perf_counter()
                cond.notify_all()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        studies = StudySynthesizer(args.seed).write(args.n, work / "studies", progress=False)
        port, dicom_port = _free_port(), _free_port()
        env = {**os.environ, "CLINICAL_MM_DATA_DIR": str(work / "data"), "CLINICAL_MM_KEY": "3c" * 32}
        cli = [sys.executable, "-m", "clinical_mm.cli"]
        admin = subprocess.run([*cli, "keys", "create", "--role", "admin"], env=env, capture_output=True,
                               check=True).stdout.decode().strip()
        proc = subprocess.Popen([*cli, "serve", "--port", str(port), "--dicom-port", str(dicom_port),
                                 "--allow-aet", "BENCH"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            t_start = time.perf_counter()
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            startup = time.perf_counter() - t_start
            httpx.post(f"{base}/v1/subscribers", headers={"Authorization": f"Bearer {admin}"},
                       json={"url": f"http://127.0.0.1:{receiver.server_address[1]}/hook",
                             "secret": "benchmark-secret-0123456789", "min_priority": "routine"}).raise_for_status()
            latencies = []
            before: set[str] = set()
            for study in studies:
                seen = len(before)
                subprocess.run(["storescu", "-aet", "BENCH", "-aec", "CLINICALMM", "127.0.0.1", str(dicom_port),
                                *[str(work / "studies" / f) for f in study.files]], check=True, capture_output=True)
                sent = time.perf_counter()
                with cond:
                    cond.wait_for(lambda seen=seen: len(arrivals) > seen, timeout=120)
                    new = set(arrivals) - before
                    if not new:
                        sys.exit("no callback within 120 s")
                    latencies.append(arrivals[next(iter(new))] - sent)
                    before = set(arrivals)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            receiver.shutdown()
    ms = np.array(latencies) * 1e3
    print(f"{len(ms)} studies, {sum(len(s.files) for s in studies)} instances; {os.cpu_count()} CPUs; "
          f"serve ready in {startup:.1f} s")
    print(f"C-STORE completion -> callback received: p50 {np.percentile(ms, 50):.0f} ms, "
          f"p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms, mean {ms.mean():.0f} ms")


if __name__ == "__main__":
    main()
