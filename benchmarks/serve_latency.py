"""`serve` end to end: time from C-STORE completion (dcmtk's storescu returns) to the signed triage callback
received by a subscriber on 127.0.0.1, per study, with the default model.

Starts `clinical-mm serve` in a fresh data folder, registers a callback receiver, sends N synthetic studies
one after the other (each its own association, as a PACS forwarding a study does) and prints p50, p95
and the maximum. Needs dcmtk (storescu).

With ``--associations K`` it sends the N studies at once instead, over K simultaneous associations (a PACS
catching up after an outage), and prints the time until the last callback and whether every study arrived.

    python benchmarks/serve_latency.py [--n 50] [--seed 46] [--associations 20]
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
from functools import partial
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


def _storescu(dicom_port: int, files: list[Path]) -> list[str]:
    return ["storescu", "-aet", "BENCH", "-aec", "CLINICALMM", "127.0.0.1", str(dicom_port), *map(str, files)]


def _more_than(arrivals: dict[str, float], seen: int) -> bool:
    return len(arrivals) > seen


def _one_by_one(studies: list[Any], root: Path, dicom_port: int, cond: threading.Condition,
                arrivals: dict[str, float]) -> list[float]:
    """Each study its own association, the next after the last one's callback: seconds from C-STORE
    completion to the callback, per study."""
    latencies = []
    before: set[str] = set()
    for study in studies:
        subprocess.run(_storescu(dicom_port, [root / f for f in study.files]), check=True, capture_output=True)
        sent = time.perf_counter()
        with cond:
            cond.wait_for(partial(_more_than, arrivals, len(before)), timeout=120)
            new = set(arrivals) - before
            if not new:
                sys.exit("no callback within 120 s")
            latencies.append(arrivals[next(iter(new))] - sent)
            before = set(arrivals)
    return latencies


def _burst(studies: list[Any], root: Path, dicom_port: int, cond: threading.Condition,
           arrivals: dict[str, float], associations: int) -> float:
    """All studies at once over ``associations`` simultaneous associations: seconds from the first send
    to the last callback."""
    t0 = time.perf_counter()
    senders = [subprocess.Popen(_storescu(dicom_port, [root / f for s in studies[i::associations] for f in s.files]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(associations)]
    if any(p.wait() != 0 for p in senders):
        sys.exit("a storescu association failed")
    with cond:
        if not cond.wait_for(lambda: len(arrivals) >= len(studies), timeout=60 + 30 * len(studies)):
            sys.exit(f"{len(arrivals)} of {len(studies)} callbacks arrived")
    return max(arrivals.values()) - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--seed", type=int, default=46)
    parser.add_argument("--associations", type=int, default=1,
                        help="send the N studies at once over this many simultaneous associations")
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
            if args.associations > 1:
                elapsed = _burst(studies, work / "studies", dicom_port, cond, arrivals, args.associations)
            else:
                latencies = _one_by_one(studies, work / "studies", dicom_port, cond, arrivals)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            receiver.shutdown()
    print(f"{len(studies)} studies, {sum(len(s.files) for s in studies)} instances; {os.cpu_count()} CPUs; "
          f"serve ready in {startup:.1f} s")
    if args.associations > 1:
        print(f"{len(studies)} studies over {args.associations} simultaneous associations: {len(arrivals)} callbacks, "
              f"the last {elapsed:.1f} s after the first send ({len(arrivals) / elapsed:.2f} studies/s)")
        return
    ms = np.array(latencies) * 1e3
    print(f"C-STORE completion -> callback received: p50 {np.percentile(ms, 50):.0f} ms, "
          f"p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms, mean {ms.mean():.0f} ms")


if __name__ == "__main__":
    main()
