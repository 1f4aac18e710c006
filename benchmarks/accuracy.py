"""Accuracy of the shipped model on synthetic studies from a seed not used in training (train 1, validation 2).

Triage: AUROC of each flag's calibrated probability against the manifest labels, and sensitivity /
specificity at the shipped operating thresholds. Drafts: per-finding F1 of "stated as present in the
draft" against the manifest, where "stated as present" is the report labeler's triage reading
(clinical_mm.extraction.chexpert.RadiologyReportLabeler.stated_present: a positive mention, or an uncertain one
whose hedges lean to the finding; "No pneumothorax" is absent, "cannot be excluded" is not stated), the reading
training, the pipeline's draft check and the evaluation use.

    python benchmarks/accuracy.py [--n 200] [--seed 3] [--model PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_pipeline  # noqa: E402

from clinical_mm.core.findings import FINDINGS  # noqa: E402
from clinical_mm.core.metrics import auroc, f1_score, sensitivity_specificity  # noqa: E402
from clinical_mm.extraction.chexpert import RadiologyReportLabeler  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    if args.seed in (1, 2):
        ap.error("seeds 1 and 2 are the training and validation data of the shipped model")
    root = args.work or Path(tempfile.mkdtemp(prefix="cmm-acc-"))
    rows, results, pipeline = run_pipeline(args.n, args.seed, root, args.model)
    by_path = {r.source: r for r in results}
    labeler = RadiologyReportLabeler()
    y, p, stated, raised = [], [], [], []
    refused = 0
    for row in rows:
        res = by_path.get(row["path"])
        if res is None or res.error:
            refused += 1
            continue
        y.append([int(row[f]) for f in FINDINGS])
        p.append([res.flags[f] for f in FINDINGS])
        s = labeler.stated_present(f"{res.findings} {res.impression}")
        stated.append([s[f] for f in FINDINGS])
        raised.append([int(f in res.raised) for f in FINDINGS])
    Y, P, S, R = (np.array(a) for a in (y, p, stated, raised))
    print(f"model {pipeline.generator.model_id} sha256 {pipeline.generator.model_sha256[:16]}...  studies {len(Y)} (seed {args.seed}), refused {refused}")
    print(f"{'flag':18} {'prev':>5} {'AUROC':>7} {'sens@thr':>9} {'spec@thr':>9} {'draft F1':>9}")
    aurocs, f1s = [], []
    for j, name in enumerate(FINDINGS):
        a = auroc(Y[:, j], P[:, j])
        sens, spec = sensitivity_specificity(Y[:, j], R[:, j])
        f1 = f1_score(Y[:, j], S[:, j])
        aurocs.append(a)
        f1s.append(f1)
        print(f"{name:18} {Y[:, j].mean():5.2f} {a:7.4f} {sens:9.3f} {spec:9.3f} {f1:9.3f}")
    print(f"{'mean':18} {'':5} {np.nanmean(aurocs):7.4f} {'':9} {'':9} {np.mean(f1s):9.3f}")
    print(f"min AUROC {np.nanmin(aurocs):.4f}; min draft F1 {np.min(f1s):.3f}")
    print("goal: mean AUROC >= 0.95, every flag >= 0.90; draft F1 >= 0.85 per finding")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
