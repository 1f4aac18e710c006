"""DICOM de-identification speed: clinical-mm against dicognito, on the same files, in one run.

Both read each file with pydicom, de-identify it and write a PS3.10 file to their own output folder.
clinical-mm runs its whole `deid dicom` path (`run_batch`: PS3.15 profile over all 621 rows, keyed
pseudonyms, the encrypted vault, the audit log, per-study receipts; the synthetic files state
BurnedInAnnotation NO, so no OCR runs) with `--workers 1` and `--workers 2` (the default on 2 cores); dicognito runs its Anonymizer in one process
(as its command line does). Prints files/s and the ratio.

    python benchmarks/deid_speed.py [--n 500] [--seed 12]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_studies  # noqa: E402

from clinical_mm.core.config import PseudonymKey  # noqa: E402
from clinical_mm.pipeline.dicom_batch_deidentifier import BatchSpec, run_batch  # noqa: E402


def _ours(src: Path, out: Path, key: bytes, workers: int) -> int:
    """The `deid dicom` path: run_batch over the folder of study folders, audit log and vault included."""
    spec = BatchSpec(PseudonymKey(key), audit=out.parent / "audit.sqlite", vault=out.parent / "vault.sqlite")
    return run_batch(spec, src, out, out.parent / "quarantine", workers).written


def _dicognito(files: list[Path], out: Path) -> int:
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer()
    out.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        anonymizer.anonymize(ds)
        ds.save_as(out / f"{i}.dcm", enforce_file_format=True)
    return len(files)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="synthetic studies (about 1.15 files each)")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--work", type=Path, default=None)
    a = ap.parse_args()
    root = a.work or Path(tempfile.mkdtemp(prefix="cmm-deid-"))
    make_studies(a.n, a.seed, root)
    src = root / f"synth-{a.seed}-{a.n}"
    files = sorted(src.rglob("*.dcm"))
    key = secrets.token_bytes(32)
    print(f"{len(files)} DICOM files ({sum(f.stat().st_size for f in files) / 1e6:.0f} MB), {os.cpu_count()} CPUs")

    results = {}
    for name in ("dicognito, 1 process", "clinical-mm, 1 process", "clinical-mm, 2 processes"):
        out = root / "out" / name.replace(" ", "").replace(",", "-")
        shutil.rmtree(out.parent / out.name, ignore_errors=True)
        out.mkdir(parents=True)
        t = time.perf_counter()
        if name.startswith("dicognito"):
            n = _dicognito(files, out / "files")
        else:
            n = _ours(src / "studies", out / "files", key, 1 if name.endswith("1 process") else 2)
        dt = time.perf_counter() - t
        results[name] = n / dt
        print(f"{name:28} {n:5d} files in {dt:6.1f} s = {n / dt:7.1f} files/s")
    base = results["dicognito, 1 process"]
    for name in ("clinical-mm, 1 process", "clinical-mm, 2 processes"):
        print(f"{name} / dicognito: {results[name] / base:.2f}x")
    print("goal: at least 2x dicognito")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
