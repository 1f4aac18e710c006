"""Batch throughput on a local Dask cluster: files/s of ``deid dicom`` and studies/s of ``analyze`` with one worker
process and with two (``--cluster``), and the single-process run for comparison. Prints figures; asserts nothing.

Usage: python benchmarks/cluster_throughput.py [N_STUDIES]   (default 40; a study is one or two files)
The cluster is started here on 127.0.0.1 and stopped at the end. On a 2-core machine two workers can at most double
the throughput; the coordinator, the scheduler and OCR's own threads share the same cores.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per worker process: the workers are the parallelism

from click.testing import CliRunner  # noqa: E402
from distributed import LocalCluster  # noqa: E402

from clinical_mm.cli import cli  # noqa: E402
from clinical_mm.synth.study_synthesizer import StudySynthesizer  # noqa: E402


def _timed(args: list[str]) -> float:
    start = time.perf_counter()
    result = CliRunner().invoke(cli, args)
    if result.exit_code != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed: {result.output[-2000:]}")
    return time.perf_counter() - start


def main(n: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="cmm-cluster-bench-"))
    os.environ["CLINICAL_MM_DATA_DIR"] = str(root / "data")
    os.environ["CLINICAL_MM_KEY"] = "c3" * 32
    try:
        studies = StudySynthesizer(71).write(n, root / "in", progress=False, workers=1)
        files = sum(len(s.files) for s in studies)
        print(f"{n} studies, {files} files; {os.cpu_count()} cores")
        studies_dir = str(root / "in" / "studies")
        rows = [("one process", _timed(["deid", "dicom", studies_dir, str(root / "d0"), "--workers", "1"]),
                 _timed(["analyze", studies_dir, "--out", str(root / "a0")]))]
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None, worker_dashboard_address=None) as cluster:
                address = cluster.scheduler_address
                for warm in range(workers):  # a study per worker, so that each has loaded the model
                    _timed(["analyze", str(root / "in" / studies[warm].files[0]), "--out",
                            str(root / f"warm{workers}-{warm}"), "--cluster", address])
                rows.append((f"{workers} worker{'s' if workers > 1 else ''}",
                             _timed(["deid", "dicom", studies_dir, str(root / f"d{workers}"), "--cluster", address]),
                             _timed(["analyze", studies_dir, "--out", str(root / f"a{workers}"), "--cluster", address])))
        print("(the one-process analyze includes its one model load; the workers had loaded theirs)")
        print(f"{'run':<14}{'deid dicom files/s':>20}{'analyze studies/s':>20}")
        for name, deid_s, analyze_s in rows:
            print(f"{name:<14}{files / deid_s:>20.2f}{n / analyze_s:>20.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
