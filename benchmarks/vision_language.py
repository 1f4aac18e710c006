"""Speed of the vision-language uses of the shipped model, and of the retrieval index at archive scale.

* per image: image embedding (the Q query vectors), zero-shot scoring of one finding (prompt ensemble), one
  answer to a question, phrase grounding (occlusion: about 100 encoder passes);
* the index (faiss HNSW, inner product): build time and search latency for text -> images and image -> reports
  over N studies of random unit vectors of the model's shape (Q vectors per image), and its memory.

Prints figures; asserts nothing. Run: python benchmarks/vision_language.py [--studies 20000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from clinical_mm.core.config import DEFAULT_MODEL_PATH
from clinical_mm.model.checkpoint import load_model
from clinical_mm.model.grounding import InputGeometry
from clinical_mm.model.vector_index import StudyIndex
from clinical_mm.model.vision_language import VisionLanguage


def _timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def per_image(repeat: int) -> None:
    vl = VisionLanguage(load_model(DEFAULT_MODEL_PATH))
    size = vl.model.config.vision.image_size
    pixels = torch.rand(1, 1, size, size)
    print(f"per image ({torch.get_num_threads()} threads, median of {repeat}):")
    print(f"  image embedding          {_timed(lambda: vl.image_vectors(pixels), repeat):8.1f} ms")
    print(f"  zero-shot, one finding   {_timed(lambda: vl.zero_shot(pixels, ['pleural effusion']), repeat):8.1f} ms")
    print(f"  one answer               {_timed(lambda: vl.ask(pixels, 'Is there a pneumothorax?'), repeat):8.1f} ms")
    geometry = InputGeometry(512, 512, size)
    print(f"  phrase grounding         {_timed(lambda: vl.ground(pixels, 'pacemaker', geometry), 3):8.1f} ms")


def index_scale(n: int, queries: int, dim: int) -> None:
    rng = np.random.default_rng(0)

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    images, reports = unit(rng.normal(size=(n, queries, dim))), unit(rng.normal(size=(n, dim)))
    entries = [{"key": f"study-{i}", "report": f"report {i}"} for i in range(n)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    index = StudyIndex(entries, images, reports, {"id": "bench", "sha256": "bench"})
    build = time.perf_counter() - t
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    with tempfile.TemporaryDirectory() as tmp:
        index.save(Path(tmp))
        on_disk = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
    text = _timed(lambda: index.images_for_text(reports[rng.integers(n)], 5, "bench"), 50)
    image = _timed(lambda: index.reports_for_image(images[rng.integers(n)], 5, "bench"), 50)
    brute = images.reshape(n * queries, dim)
    exact = 0
    for i in range(50):
        q = reports[i]
        best = np.argsort(-(brute @ q).reshape(n, queries).max(1))[:5]
        exact += len(set(best) & {h.position for h in index.images_for_text(q, 5, "bench")})
    print(f"index of {n} studies x {queries} query vectors of {dim} (faiss HNSW):")
    print(f"  build {build:.1f} s ({n / build:.0f} studies/s); {on_disk:.0f} MB on disk; max RSS grew {grown:.0f} MB")
    print(f"  text -> images top 5: {text:.2f} ms; image -> reports top 5: {image:.2f} ms (median of 50)")
    print(f"  recall of the exact top 5 (text -> images, 50 queries): {exact / 250:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    per_image(args.repeat)
    cfg = load_model(DEFAULT_MODEL_PATH).model.config
    index_scale(args.studies, cfg.qformer.num_query_tokens, cfg.heads.contrastive_dim)


if __name__ == "__main__":
    main()
