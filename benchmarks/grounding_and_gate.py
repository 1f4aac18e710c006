"""Grounding and the input gate on a held-out synthetic seed, and the gate on images that are no chest film.

    python benchmarks/grounding_and_gate.py [--n 400] [--seed 3] [--subtlety standard]

Analyses the synthetic studies through the pipeline (gate included) and prints:
* grounding on raised findings that are present: the pointing game (the peak within a finding's box, with the
  usual 15/224 of the image side as tolerance) and the mean IoU of the predicted boxes with the finding's
  boxes (both as pixel sets), per flag and overall, with 95% bootstrap intervals;
* the gate on the synthetic studies: refused, and analysed but outside the validated domain;
* the gate on pydicom's test images that are no chest radiograph and on two photographs, relabelled
  CR / CHEST / PA, and on a synthetic and a real chest film turned (rotated, upside down, inverted): refused;
* the real chest films at hand (pydicom-data's RG1, and ../shared/data's burned-in CR when present):
  analysed or refused, in the domain or not.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import make_studies  # noqa: E402

from clinical_mm.audit.sqlite_sink import SQLiteAuditSink  # noqa: E402
from clinical_mm.core.config import DEFAULT_MODEL_PATH, PseudonymKey  # noqa: E402
from clinical_mm.core.findings import FINDINGS  # noqa: E402
from clinical_mm.deid import DicomDeidentifier  # noqa: E402
from clinical_mm.model.checkpoint import load_input_gate  # noqa: E402
from clinical_mm.model.report_generator import ClinicalMMReportGenerator  # noqa: E402
from clinical_mm.pipeline.analysis_pipeline import AnalysisPipeline  # noqa: E402
from clinical_mm.synth.relabel import TURNS, grey_pixels, relabelled_chest_radiograph, turned  # noqa: E402

NOT_CHEST = ("CT_small.dcm", "693_UNCI.dcm", "explicit_VR-UN.dcm", "MR2_UNCR.dcm", "MR_small.dcm", "emri_small.dcm",
             "US1_UNCR.dcm", "OBXXXX1A.dcm", "RG3_UNCR.dcm", "JPEG2000_UNC.dcm")
SHARED_CR = Path(__file__).resolve().parents[2] / "shared" / "data" / "burned_in_dev" / "0_ORIGINAL_compressed.dcm"


def _ci(values: list[float], rng: np.random.Generator) -> str:
    if not values:
        return "n/a"
    arr = np.asarray(values, dtype=float)
    boots = [arr[rng.integers(len(arr), size=len(arr))].mean() for _ in range(1000)]
    return f"{arr.mean():.3f} [{np.quantile(boots, 0.025):.3f}, {np.quantile(boots, 0.975):.3f}] (n={len(arr)})"


def _box_mask(shape: tuple[int, int], boxes: list[list[int]]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


def grounding(rows: list[dict[str, str]], lines: list[dict[str, object]], data: Path) -> None:
    by_path = {str(line["source"]): line for line in lines}
    hits: dict[str, list[float]] = {f: [] for f in FINDINGS}
    ious: dict[str, list[float]] = {f: [] for f in FINDINGS}
    for row in rows:
        line, truth = by_path.get(row["path"]), json.loads(row["regions"])
        if line is None or "error" in line:
            continue
        ds = pydicom.dcmread(data / row["path"], stop_before_pixels=True)
        shape, tol = (int(ds.Rows), int(ds.Columns)), 15 / 224 * max(int(ds.Rows), int(ds.Columns))
        for name, region in dict(line.get("regions") or {}).items():  # type: ignore[call-overload]
            if name not in truth:
                continue  # raised but absent: a false positive has no region to point at
            px, py = region["pixel_peak"]
            hits[name].append(float(any(x0 - tol <= px <= x1 + tol and y0 - tol <= py <= y1 + tol
                                         for x0, y0, x1, y1 in truth[name])))
            a, b = _box_mask(shape, truth[name]), _box_mask(shape, region["pixel_boxes"])
            ious[name].append(float((a & b).sum() / max(1, (a | b).sum())))
    rng = np.random.default_rng(0)
    print("grounding on raised findings that are present (pointing game | box IoU):")
    for name in FINDINGS:
        print(f"  {name:17s} {_ci(hits[name], rng)} | {_ci(ious[name], rng)}")
    print(f"  {'all':17s} {_ci(sum(hits.values(), []), rng)} | {_ci(sum(ious.values(), []), rng)}")


def hostile_inputs(root: Path, patient: pydicom.Dataset) -> dict[str, str]:
    what = {}
    for name in NOT_CHEST:
        found = get_testdata_file(name, download=False)
        if found is None:
            continue
        relabelled_chest_radiograph(grey_pixels(pydicom.dcmread(str(found))), patient).save_as(root / name, enforce_file_format=True)
        what[name] = "not a chest radiograph"
    from sklearn.datasets import load_sample_image

    for name in ("china.jpg", "flower.jpg"):
        grey = load_sample_image(name).astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        relabelled_chest_radiograph(grey, patient).save_as(root / f"photo-{name}.dcm", enforce_file_format=True)
        what[f"photo-{name}.dcm"] = "photograph"
    films = {"synthetic": grey_pixels(patient)}
    real = get_testdata_file("RG1_UNCR.dcm", download=False)
    if real is not None:
        films["real"] = grey_pixels(pydicom.dcmread(str(real)))
    for film, pixels in films.items():
        for turn in TURNS:
            name = f"{film}-{turn.replace(' ', '-')}.dcm"
            relabelled_chest_radiograph(turned(pixels, turn), patient).save_as(root / name, enforce_file_format=True)
            what[name] = f"{film} chest film, {turn}"
    return what


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="Keep the synthetic studies here (default: a temporary folder).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.work or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        rows = make_studies(args.n, args.seed, root)
        generator = ClinicalMMReportGenerator.from_path(DEFAULT_MODEL_PATH)
        gate = load_input_gate(generator.loaded)
        sink = SQLiteAuditSink(root / "audit.sqlite")
        pipeline = AnalysisPipeline(generator, DicomDeidentifier(PseudonymKey(secrets.token_bytes(32), ephemeral=True)),
                                    sink, gate=gate)
        data = root / f"synth-{args.seed}-{args.n}"
        results = pipeline.run(data, root / "out")
        lines = [r.to_json() for r in results]
        refused = sum("error" in line for line in lines)
        outside = sum(not line["ood"]["in_domain"] for line in lines if "ood" in line)  # type: ignore[index]
        ground_ms = [r.timings_ms.get("ground", 0.0) for r in results if r.regions]
        print(f"grounding time per study with raised flags: median {np.median(ground_ms):.0f} ms" if ground_ms else "")
        print(f"synthetic seed {args.seed}, {len(lines)} studies: refused by the gate {refused} "
              f"({refused / len(lines):.2%}), analysed outside the validated domain {outside} ({outside / len(lines):.2%})")
        grounding(rows, lines, data)
        hostile = root / "hostile"
        hostile.mkdir()
        what = hostile_inputs(hostile, pydicom.dcmread(data / rows[0]["path"]))
        hostile_results = {str(r.source): r for r in pipeline.run(hostile, root / "out-hostile")}
        n_refused = sum(r.error is not None for r in hostile_results.values())
        print(f"images relabelled CR/CHEST/PA that are no upright chest film: {n_refused} of {len(what)} refused")
        for name, r in sorted(hostile_results.items()):
            if r.error is None:
                print(f"  ANALYSED: {name} ({what[name]}), priority {r.priority}")
        real_dir = root / "real"
        real_dir.mkdir()
        for src in (get_testdata_file("RG1_UNCR.dcm", download=False), SHARED_CR if SHARED_CR.is_file() else None):
            if src is not None:
                (real_dir / Path(str(src)).name).write_bytes(Path(str(src)).read_bytes())
        for r in pipeline.run(real_dir, root / "out-real"):
            state = f"refused ({r.error})" if r.error else f"analysed, in domain {r.ood['in_domain'] if r.ood else None}, " \
                                                          f"distance {r.ood['score'] if r.ood else None}"
            print(f"real chest film {r.source}: {state}")
        sink.close()


if __name__ == "__main__":
    main()
