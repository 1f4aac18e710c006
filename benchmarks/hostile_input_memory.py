"""Peak memory and time of `analyze` and `deid dicom` on the fuzz corpus of the tests (pydicom's test files in
odd transfer syntaxes and pixel formats, their truncations and byte flips, header mutations, a decompression
bomb; tests/support/fuzz_corpus.py) followed by one valid chest study. Each command runs in a process of its
own; its peak resident memory is read from the kernel (getrusage of the finished child). The README's ceiling
for either command on this corpus is 2 GiB.

    python benchmarks/hostile_input_memory.py [--seed 18]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support.fuzz_corpus import build  # noqa: E402

from clinical_mm.synth.study_synthesizer import StudySynthesizer  # noqa: E402


def _measure(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(peak MiB, seconds, exit code) of ``clinical-mm ARGS`` in a fresh child of a fresh process."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - t, code)")
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "clinical_mm.cli", *args],
                         capture_output=True, text=True, env=env, check=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=18, help="seed of the byte flips")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        study = StudySynthesizer(5).make_study(0, root / "chest")
        files = build(root / "chest" / study.path, root / "in", seed=args.seed)
        (root / "in" / "zz-valid.dcm").write_bytes((root / "chest" / study.path).read_bytes())
        n = len(files) + 1
        env = {**os.environ, "CLINICAL_MM_KEY": "ab" * 32, "CLINICAL_MM_DATA_DIR": str(root / "data")}
        print(f"fuzz corpus: {n} files ({sum(p.stat().st_size for p in (root / 'in').iterdir()) / 2**20:.1f} MiB), "
              f"seed {args.seed}; {os.cpu_count()} CPUs; "
              f"this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        for name, command in (("analyze", ["analyze", str(root / "in"), "--out", str(root / "out")]),
                              ("deid dicom --workers 1", ["deid", "dicom", str(root / "in"), str(root / "dst"),
                                                          "--workers", "1"])):
            peak, seconds, code = _measure(command, env)
            print(f"{name:24} peak {peak:7.0f} MiB  {seconds:6.1f} s  {n / seconds:6.1f} files/s  exit {code}")


if __name__ == "__main__":
    main()
