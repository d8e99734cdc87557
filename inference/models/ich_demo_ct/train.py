"""Train the ICH demo model on synthetic head CTs and write its MONAI bundle.

    python -m inference.models.ich_demo_ct.train --out resources/models/ich_demo_ct

Deterministic: seeded data, seeded weights, deterministic torch algorithms, a fixed
thread count; the same command gives the same weights on the same torch build and
CPU (another CPU's SIMD kernels round differently). The defaults took 1 min 28 s on 2
idle CPU cores (measured: docs/inference.md). ``--cases 2 --iterations 2`` is the
tiny configuration the tests run. Cases use seeds 1000+; the held-out evaluation
(``evaluate.py``) uses seeds 9000+, never seen in training.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from inference.models.ich_demo_ct.data import make_case
from inference.models.ich_demo_ct.network import SmallUNet3D

HERE = Path(__file__).resolve().parent
TRAIN_SEED0 = 1000
PATCH = (16, 48, 48)


def to_model_grid(hu: np.ndarray, shape: tuple[int, int, int], window: tuple[float, float]):
    """The same preprocessing as the runner (inference.worker): clip, scale, area-resample."""
    low, high = window
    x = torch.from_numpy(hu)
    x = ((x.clamp(low, high) - low) / (high - low))[None, None]
    return F.interpolate(x, size=shape, mode="area")[0, 0]


def model_shape(
    native: tuple[int, int, int],
    spacing: tuple[float, float, float],
    target: tuple[float, float, float],
) -> tuple[int, int, int]:
    return tuple(max(1, round(n * s / t)) for n, s, t in zip(native, spacing, target))  # type: ignore[return-value]


def build_set(count: int, manifest: dict, seed0: int) -> tuple[list, list]:
    ours = manifest["ai_review_companion"]
    window = tuple(ours["intensity_window"])
    target = tuple(ours["spacing_mm"])
    xs, ys = [], []
    for n in range(count):
        case = make_case(seed0 + n, lesion=n % 4 != 3)  # three in four with a bleed
        v = case.volume
        shape = model_shape(
            case.hu.shape, (v.slice_thickness, v.pixel_spacing, v.pixel_spacing), target
        )
        xs.append(to_model_grid(case.hu, shape, window))
        truth = F.interpolate(
            torch.from_numpy(case.truth.astype(np.float32))[None, None], size=shape, mode="area"
        )[0, 0]
        ys.append((truth >= 0.5).float())
    return xs, ys


def sample(xs: list, ys: list, rng: np.random.Generator, batch: int):
    bx, by = [], []
    pz, py, px = PATCH
    for _ in range(batch):
        i = int(rng.integers(len(xs)))
        x, y = xs[i], ys[i]
        z0, y0, x0 = (int(rng.integers(0, s - p + 1)) for s, p in zip(x.shape, PATCH))
        if y.any() and rng.random() < 0.6:  # centre most patches near the lesion
            fg = torch.nonzero(y)
            cz, cy, cx = (int(v) for v in fg[int(rng.integers(len(fg)))])
            z0 = min(max(0, cz - pz // 2 + int(rng.integers(-4, 5))), x.shape[0] - pz)
            y0 = min(max(0, cy - py // 2 + int(rng.integers(-12, 13))), x.shape[1] - py)
            x0 = min(max(0, cx - px // 2 + int(rng.integers(-12, 13))), x.shape[2] - px)
        bx.append(x[z0 : z0 + pz, y0 : y0 + py, x0 : x0 + px])
        by.append(y[z0 : z0 + pz, y0 : y0 + py, x0 : x0 + px])
    return torch.stack(bx)[:, None], torch.stack(by)[:, None]


def train(cases: int, iterations: int, seed: int, batch: int = 4, log_every: int = 100):
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    manifest = json.loads((HERE / "metadata.json").read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    xs, ys = build_set(cases, manifest, TRAIN_SEED0)
    print(f"{cases} cases in {time.perf_counter() - t0:.0f} s", flush=True)
    net = SmallUNet3D()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, iterations))
    rng = np.random.default_rng(seed)
    pos_weight = torch.tensor(3.0)
    for it in range(1, iterations + 1):
        x, y = sample(xs, ys, rng, batch)
        logits = net(x)
        prob = torch.sigmoid(logits)
        bce = F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)
        dice = 1 - (2 * (prob * y).sum() + 1) / (prob.sum() + y.sum() + 1)
        loss = bce + dice
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % log_every == 0 or it == iterations:
            print(
                f"iteration {it}: loss {loss.item():.4f} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    return net.eval(), manifest


def write_bundle(net: SmallUNet3D, manifest: dict, out: Path) -> None:
    """``out/configs/metadata.json``, ``out/models/model.ts`` and ``model.pt``, docs, LICENSE."""
    (out / "configs").mkdir(parents=True, exist_ok=True)
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "docs").mkdir(parents=True, exist_ok=True)
    manifest = dict(manifest)
    manifest["pytorch_version"] = str(torch.__version__).split("+")[0]
    manifest["numpy_version"] = np.__version__
    (out / "configs" / "metadata.json").write_text(
        json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
    )
    scripted = torch.jit.script(net)
    scripted.save(str(out / "models" / "model.ts"))
    torch.save(net.state_dict(), out / "models" / "model.pt")
    shutil.copy(HERE / "README.md", out / "docs" / "README.md")
    shutil.copy(HERE / "LICENSE", out / "LICENSE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cases", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    net, manifest = train(args.cases, args.iterations, args.seed)
    write_bundle(net, manifest, args.out)
    print(f"bundle written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
