"""Speed of `analyze` per study on this machine, split by stage, plus the model's achieved GFLOP/s.

Prints p50 and p95 per stage (read, de-identify, preprocess, encode, generate, FHIR, audit) and in
total over N synthetic studies; the checkpoint load time; the FLOPs of one study's model work (counted
with torch.utils.flop_counter) divided by its time, against a plain fp32 matmul on the same machine.

    python benchmarks/latency.py [--n 50] [--seed 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_pipeline  # noqa: E402

from clinical_mm.core.config import DEFAULT_MODEL_PATH  # noqa: E402
from clinical_mm.model.checkpoint import load_model  # noqa: E402
from clinical_mm.pipeline.analysis_pipeline import STAGES  # noqa: E402


def matmul_gflops(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def model_gflops(model_path: Path) -> tuple[float, float, float]:
    from torch.utils.flop_counter import FlopCounterMode

    loaded = load_model(model_path)
    model = loaded.model
    size = model.config.vision.image_size
    x = torch.randn(1, 1, size, size)
    for p in model.parameters():  # FlopCounterMode's module hooks fail under no_grad / inference_mode
        p.requires_grad_(False)
    q = model.query_output(model.encode_image(x))
    n_tokens = model.generate(q).shape[1]
    counter = FlopCounterMode(display=False)
    with counter:
        q = model.query_output(model.encode_image(x))
        model.triage_logits(q)
        model.generate(q, max_new_tokens=n_tokens)
    flops = counter.get_total_flops()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        q = model.query_output(model.encode_image(x))
        model.triage_logits(q)
        model.generate(q, max_new_tokens=n_tokens)
        times.append(time.perf_counter() - t)
    best = min(times)
    return flops / 1e9, best, flops / best / 1e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    t = time.perf_counter()
    load_model(args.model)
    print(f"checkpoint load (imports done, sha256 verified): {time.perf_counter() - t:.2f} s")
    root = Path(tempfile.mkdtemp(prefix="cmm-lat-"))
    _rows, results, _ = run_pipeline(args.n, args.seed, root, args.model)
    ok = [r for r in results if r.error is None]
    print(f"studies analysed: {len(ok)} of {len(results)} (first study included: warm-up is part of use)")
    print(f"{'stage':12} {'p50 ms':>8} {'p95 ms':>8}")
    for stage in STAGES:
        v = np.array([r.timings_ms.get(stage, 0.0) for r in ok])
        print(f"{stage:12} {np.percentile(v, 50):8.1f} {np.percentile(v, 95):8.1f}")
    total = np.array([sum(r.timings_ms.values()) for r in ok])
    print(f"{'total':12} {np.percentile(total, 50):8.1f} {np.percentile(total, 95):8.1f}")
    gflop, secs, rate = model_gflops(args.model)
    mm = matmul_gflops()
    print(f"model work per study: {gflop:.2f} GFLOP in {secs * 1e3:.0f} ms = {rate:.1f} GFLOP/s")
    print(f"plain fp32 matmul 2048x2048: {mm:.1f} GFLOP/s; the model achieves {100 * rate / mm:.1f}% of it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
