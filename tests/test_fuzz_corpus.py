"""The fuzz corpus (tests/support/fuzz_corpus.py) through analyze and deid dicom, each in a process of its own
whose peak memory is measured, and over C-STORE to the listener of a running serve: no traceback, every file
accounted for with a reason and an audit record, the valid chest study after the corpus analysed, peak memory
under the documented ceiling (README)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pydicom
import pytest
from support.fuzz_corpus import build
from support.serve_harness import Service, storescu, wait_for

from clinical_mm.synth.study_synthesizer import SynthStudy

#: the documented ceiling of one analyze or deid dicom process on the corpus (README, "Hostile input")
CEILING_MIB = 2048
_PEAK = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, done.returncode)")

pytestmark = pytest.mark.slow


def _run(args: list[str], env: dict[str, str]) -> tuple[int, int, str]:
    """(peak resident MiB of the command, its exit code, its output)."""
    done = subprocess.run([sys.executable, "-c", _PEAK, sys.executable, "-m", "clinical_mm.cli", *args],
                          capture_output=True, text=True, env=env, timeout=1800)
    peak, code = map(int, done.stdout.strip().splitlines()[-1].split())
    return peak, code, done.stdout + done.stderr


@pytest.fixture(scope="module")
def corpus(synth_dir: tuple[Path, list[SynthStudy]], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    src, studies = synth_dir
    root = tmp_path_factory.mktemp("fuzz")
    files = build(src / studies[0].path, root / "in")
    (root / "in" / "zz-valid.dcm").write_bytes((src / studies[0].path).read_bytes())
    return root / "in", len(files) + 1


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CLINICAL_MM_KEY": "ab" * 32, "CLINICAL_MM_DATA_DIR": str(tmp_path / "data")}


def test_when_the_fuzz_corpus_is_analysed_then_nothing_crashes_each_study_is_accounted_for_and_memory_stays_low(
        corpus: tuple[Path, int], tmp_path: Path) -> None:
    src, _ = corpus
    peak, code, output = _run(["analyze", str(src), "--out", str(tmp_path / "out")], _env(tmp_path))
    assert code == 0 and "Traceback" not in output, output[-3000:]
    assert "1.3.6.1.4.1.5962" not in output  # no value of a file (here the UIDs of pydicom's) in a log line
    lines = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert all("error" in line or line.get("priority") for line in lines)
    assert any(line["source"] == "zz-valid.dcm" and "error" not in line for line in lines)
    db = sqlite3.connect(tmp_path / "data" / "audit.sqlite")
    records = db.execute("SELECT COUNT(*) FROM audit WHERE action = 'analyze'").fetchone()[0]
    db.close()
    assert records >= len(lines)  # every line, refused or analysed, has its record
    assert peak < CEILING_MIB, f"analyze peaked at {peak} MiB"


def test_when_the_fuzz_corpus_is_deidentified_then_every_file_is_written_or_quarantined_and_memory_stays_low(
        corpus: tuple[Path, int], tmp_path: Path) -> None:
    src, n = corpus
    peak, code, output = _run(["deid", "dicom", str(src), str(tmp_path / "dst"), "--workers", "1"], _env(tmp_path))
    assert code == 0 and "Traceback" not in output, output[-3000:]
    assert "1.3.6.1.4.1.5962" not in output  # no value of a file (here the UIDs of pydicom's) in a log line
    quarantine = tmp_path / "dst-quarantine" / "quarantine.jsonl"
    quarantined = [json.loads(line) for line in quarantine.read_text().splitlines()] if quarantine.exists() else []
    assert all(entry["reason"] for entry in quarantined)
    assert "zz-valid.dcm" not in {entry["source"] for entry in quarantined}
    db = sqlite3.connect(tmp_path / "data" / "audit.sqlite")
    outcomes = [row[0] for row in db.execute("SELECT outcome FROM audit WHERE action = 'deidentify'")]
    db.close()
    assert len(outcomes) == n and outcomes.count("quarantined") == len(quarantined)  # every file: one record
    for path in (tmp_path / "dst").rglob("*.dcm"):  # what was written decodes as its header says
        ds = pydicom.dcmread(path)
        if "PixelData" in ds and not ds.file_meta.TransferSyntaxUID.is_compressed:
            assert ds.BurnedInAnnotation == "NO"
    assert peak < CEILING_MIB, f"deid dicom peaked at {peak} MiB"


def _vm_hwm_mib(pid: int) -> int:
    """The peak resident memory (VmHWM) of a running process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM")


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk (storescu) is installed by make test")
def test_when_the_fuzz_corpus_is_sent_to_the_listener_then_serve_stays_up_refuses_with_reasons_and_analyses_the_valid_study(
        corpus: tuple[Path, int], tmp_path: Path) -> None:
    src, _ = corpus
    service = Service(tmp_path / "serve")
    admin, auditor = service.cli("keys", "create", "--role", "admin"), service.cli("keys", "create", "--role", "auditor")
    service.start()
    try:
        for path in sorted(src.iterdir()):  # one association a file: storescu itself stops at a file it cannot read
            storescu(service.dicom_port, [path])
        assert service.proc is not None and service.proc.poll() is None, "serve died"
        jobs = wait_for(lambda: (rows := httpx.get(f"{service.base}/v1/jobs", headers={"Authorization": f"Bearer {admin}"},
                                                   timeout=10).json())
                        and all(r["state"] in ("analyzed", "delivered", "failed") for r in rows) and rows, timeout=600)
        assert any(r["state"] in ("analyzed", "delivered") for r in jobs)  # the valid study at least
        assert all(r["error"] for r in jobs if r["state"] == "failed")  # every refusal with its reason
        records = httpx.get(f"{service.base}/v1/audit?limit=1000", headers={"Authorization": f"Bearer {auditor}"},
                            timeout=10).json()
        analysed = [r for r in records if r["action"] == "analyze"]
        assert len(analysed) >= len(jobs) and any(r["outcome"] == "refused" for r in analysed)
        assert _vm_hwm_mib(service.proc.pid) < CEILING_MIB
    finally:
        service.stop()
    log = service.log.read_text(errors="replace")
    assert "Traceback" not in log and "1.3.6.1.4.1.5962" not in log  # no crash, no value of a file in the log
