"""Measure the shipped ICH demo model on held-out synthetic head CTs, through the app's runner.

    python -m inference.models.ich_demo_ct.evaluate [--cases 40] [--bundle PATH]

Cases use seeds 9000+ (training uses 1000+); half have a bleed. Each goes through
``InferenceService`` (worker process, resampling, sliding window, threshold, minimum
lesion size), exactly as in the app. Per study: sensitivity = studies with a bleed where
a finding overlaps it; specificity = studies without a bleed and without findings. Dice
is voxelwise on the image grid, averaged over the studies with a bleed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from app.archive.volume import ImageVolume
from inference.models.ich_demo_ct.data import Case, make_case
from inference.registry import ModelRegistry, check_bundle, installed_torch_version
from inference.service import InferenceService

TEST_SEED0 = 9000
ROOT = Path(__file__).resolve().parents[3]


def case_volume(case: Case, key: str) -> ImageVolume:
    """A phantom as the loader would give it (HU, axial, ordered by z)."""
    v = case.volume
    n = case.hu.shape[0]
    positions = np.array([[v.origin_xy[0], v.origin_xy[1], z] for z in v.z_positions])
    return ImageVolume(
        pixels=case.hu,
        sop_uids=tuple(f"2.25.{9000 + k}.{abs(hash(key)) % 10**8}" for k in range(n)),
        frames=tuple(None for _ in range(n)),
        positions=positions,
        spacing=(v.slice_thickness, v.pixel_spacing, v.pixel_spacing),
        origin=(v.origin_xy[0], v.origin_xy[1], v.z_positions[0]),
        row_cosines=(1.0, 0.0, 0.0),
        col_cosines=(0.0, 1.0, 0.0),
        frame_of_reference_uid="2.25.1",
        modality="CT",
        window_center=40,
        window_width=80,
        description="synthetic test case",
    )


def evaluate(bundle: Path, cases: int) -> dict[str, object]:
    entry = check_bundle(bundle, "shipped", torch_version=installed_torch_version())
    if not entry.available:
        raise SystemExit(f"bundle unavailable: {entry.reason}")
    service = InferenceService(ModelRegistry([]), device="cpu")
    tp = fn = tn = fp = 0
    dices: list[float] = []
    false_findings = 0
    started = time.perf_counter()
    try:
        for n in range(cases):
            lesion = n % 2 == 0
            case = make_case(TEST_SEED0 + n, lesion)
            result = service.run(case_volume(case, str(n)), entry, body_part="HEAD")
            pred = result.mask
            if lesion:
                hit = [bool((m & case.truth).any()) for m in result.lesion_masks]
                tp += any(hit)
                fn += not any(hit)
                false_findings += hit.count(False)
                inter = float((pred & case.truth).sum())
                dices.append(2 * inter / float(pred.sum() + case.truth.sum()))
            else:
                fp += bool(result.findings)
                tn += not result.findings
                false_findings += len(result.findings)
            print(
                f"case {n}: lesion={lesion} findings={len(result.findings)}"
                + (f" dice={dices[-1]:.3f}" if lesion else ""),
                flush=True,
            )
    finally:
        service.close()
    return {
        "cases": cases,
        "with_bleed": tp + fn,
        "without_bleed": tn + fp,
        "sensitivity": round(tp / max(1, tp + fn), 3),
        "specificity": round(tn / max(1, tn + fp), 3),
        "dice_mean": round(float(np.mean(dices)), 3) if dices else None,
        "dice_min": round(float(np.min(dices)), 3) if dices else None,
        "false_positive_findings": false_findings,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, default=ROOT / "resources/models/ich_demo_ct")
    parser.add_argument("--cases", type=int, default=40)
    args = parser.parse_args(argv)
    print(json.dumps(evaluate(args.bundle, args.cases), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
