"""serve split over processes on one PostgreSQL: an API and DICOM listener process and worker processes (procrastinate
jobs), sharing one data folder. A worker killed mid-study, and a worker added while studies arrive: every study is
analysed and called back once."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from support.serve_harness import Receiver, Service, files_of, storescu, wait_for

from clinical_mm.synth.study_synthesizer import StudySynthesizer, SynthStudy

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk (storescu) is installed by make test")]
SECRET = "scale-out-receiver-secret-0123456789"
CLAIMED = re.compile(r"study (\S+) claimed by worker process (\d+)")


@pytest.fixture()
def deployment(postgres_url: str, tmp_path: Path) -> Iterator[tuple[Service, list[Service], Path]]:
    """A database of its own, the front process (API and listener) and a factory's list of workers."""
    name = f"serve_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    front = Service(tmp_path / "data")
    front.env["CLINICAL_MM_DATABASE_URL"] = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    workers: list[Service] = []
    yield front, workers, tmp_path
    for svc in (*workers, front):
        svc.stop()


def _worker(front: Service, workers: list[Service], tmp_path: Path) -> Service:
    worker = Service(front.data_dir)
    worker.env = dict(front.env)
    worker.log = tmp_path / f"worker-{len(workers)}.log"
    workers.append(worker)
    worker.start("worker")
    return worker


def _claims(worker: Service) -> list[str]:
    return [m.group(1) for m in CLAIMED.finditer(worker.log.read_text(errors="replace"))]


def _subscribe(front: Service, receiver: Receiver) -> dict[str, str]:
    admin = front.cli("keys", "create", "--role", "admin")
    front.start("api", "listener")
    headers = {"Authorization": f"Bearer {admin}"}
    r = httpx.post(f"{front.base}/v1/subscribers", headers=headers,
                   json={"url": receiver.url, "secret": SECRET, "min_priority": "routine"})
    assert r.status_code == 201, r.text
    return headers


def _all_delivered_once(front: Service, headers: dict[str, str], receiver: Receiver, n: int) -> list[str]:
    jobs = wait_for(lambda: (j := httpx.get(f"{front.base}/v1/jobs", headers=headers).json()) and len(j) == n
                    and all(x["state"] == "delivered" for x in j) and j, 300)
    time.sleep(2)  # a duplicate callback would have arrived by now
    studies = Counter(json.loads(body)["study"]["id"] for _, body in receiver.events)
    assert set(studies) == {j["study_key"] for j in jobs}
    assert set(studies.values()) == {1}, studies  # each study called back once
    return [j["study_key"] for j in jobs]


def test_when_a_worker_is_killed_mid_study_then_another_finishes_it_and_every_study_is_called_back_once(
        deployment: tuple[Service, list[Service], Path], receiver: Receiver,
        synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    front, workers, tmp_path = deployment
    root, studies = synth_dir
    headers = _subscribe(front, receiver)
    first, second = _worker(front, workers, tmp_path), _worker(front, workers, tmp_path)
    for study in studies[:6]:
        assert storescu(front.dicom_port, files_of(root, study)).returncode == 0

    def busy() -> Service | None:  # a worker that has claimed a study not yet delivered
        states = {j["study_key"]: j["state"] for j in httpx.get(f"{front.base}/v1/jobs", headers=headers).json()}
        return next((w for w in (first, second) if any(states.get(k) != "delivered" for k in _claims(w)[-1:])), None)

    victim = wait_for(busy, 120)
    assert victim.proc is not None
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=30)
    delivered = _all_delivered_once(front, headers, receiver, 6)
    survivor = second if victim is first else first
    assert set(_claims(victim)[-1:]) <= set(_claims(survivor))  # the killed worker's study was finished by the other
    assert len(delivered) == 6


def test_when_a_worker_is_added_while_studies_arrive_then_both_work_and_every_study_is_called_back_once(
        deployment: tuple[Service, list[Service], Path], receiver: Receiver) -> None:
    front, workers, tmp_path = deployment
    synth = StudySynthesizer(81).write(12, tmp_path / "arriving", progress=False, workers=1)
    headers = _subscribe(front, receiver)
    first = _worker(front, workers, tmp_path)

    def send(batch: list[SynthStudy]) -> None:
        for study in batch:
            storescu(front.dicom_port, [tmp_path / "arriving" / f for f in study.files])

    sender = threading.Thread(target=send, args=(synth[:4],))
    sender.start()
    wait_for(lambda: _claims(first), 120)
    second = _worker(front, workers, tmp_path)  # joins while the first studies arrive and are analysed
    sender.join(timeout=300)
    send(synth[4:])  # a burst: work for both
    _all_delivered_once(front, headers, receiver, len(synth))
    assert _claims(first) and _claims(second)  # both did some of the work
    assert not set(_claims(first)) & set(_claims(second))
