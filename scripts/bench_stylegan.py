"""StyleGAN and ProGAN beside DCGAN on digits under one fixed CPU budget (BENCHMARKS.md §2).

Each method is composed as ``gantrain model=<method>`` would (its defaults, 16×16 digits) and trained by
gantrain's own Trainer for ``--budget`` seconds of wall-clock; then 5,000 samples of its sampling network
(the EMA copy when ``trainer.ema`` is on) are scored with the classifier features of ``gantrain.metrics``
against the held-out split. ProGAN's growth is fitted to the budget: a pilot times full-size steps, and each
of the 4×4 and 8×8 phases gets a quarter of the steps that speed allows (the final size gets the rest).
The first row is the real-vs-real floor (the train split scored like a generator). Prints one table and
writes CSV and JSON beside two PNGs: 16 samples per method, and a StyleGAN style-mixing grid (rows: source
A, columns: source B; cell (i, j): A_i's coarse styles, B_j's fine ones).

    python scripts/bench_stylegan.py --budget 300                  # 5 min per method
    python scripts/bench_stylegan.py --methods stylegan stylegan_r1 --budget 120 --threads 1

ProGAN and StyleGAN train with their papers' Adam (lr 1e-3, β = (0, 0.99)), which their model configs bring;
``*_dcgan_adam`` rows train them with DCGAN's Adam (lr 2e-4, β = (0.5, 0.999)) instead, for comparison.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import gantrain.cli as cli  # registers the config's resolvers
from gantrain.data import BatchStream, take
from gantrain.metrics import build_evaluator
from gantrain.trainer import Trainer
from gantrain.visualize import image_grid, render, save_picture

METHODS = {
    "dcgan": ["model=dcgan"],
    "progan": ["model=progan"],
    "progan_dcgan_adam": ["model=progan", "optimizer=adam"],
    "stylegan": ["model=stylegan"],
    "stylegan_dcgan_adam": ["model=stylegan", "optimizer=adam"],
    "stylegan_r1": ["experiment=stylegan_r1"],
}
COMMON = ["dataset=digits", "trainer.eval_every=0", "eval.num_samples=5000"]
METRICS = ["FID", "IS", "KID", "precision", "recall", "class_KL"]


def config(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(cli.config_dir()), version_base="1.3"):
        return compose("train", overrides=overrides)


def build_trainer(cfg, bundle, run_dir: Path) -> Trainer:
    family = cli.build_family(cfg)
    optimizers = cli.build_optimizers(cfg, family, cfg.trainer.d_steps)
    stream = BatchStream(bundle.train, cfg.trainer.batch_size, seed=cfg.seed)
    return Trainer(
        family,
        stream,
        optimizers,
        run_dir,
        steps=10**9,
        d_steps=cfg.trainer.d_steps,
        ema=cfg.trainer.ema,
        num_samples=16,
        heldout=take(bundle.heldout, 16),
        seed=cfg.seed,
    )


def fit_growth(overrides: list[str], budget: float, run_dir: Path) -> list[str]:
    """``model.phase_images`` so that 4×4 and 8×8 each take a quarter of the steps a full-size pilot allows."""
    cfg = config(overrides + ["model.phase_images=0"])
    trainer = build_trainer(cfg, cli.build_data(cfg), run_dir)
    trainer.train_step()
    tic = time.perf_counter()
    for _ in range(3):
        trainer.train_step()
    steps = budget / ((time.perf_counter() - tic) / 3)
    levels = int(math.log2(cfg.dataset.image_size)) - 2
    phase = max(cfg.trainer.batch_size, int(steps * cfg.trainer.batch_size / (2 * levels)))
    return overrides + [f"model.phase_images={phase}"]


def run(method: str, seed: int, budget: float, work: Path):
    overrides = METHODS[method] + COMMON + [f"seed={seed}"]
    if method.startswith("progan"):
        overrides = fit_growth(overrides, budget, work / f"{method}-{seed}-pilot")
    cli.seed_everything(seed)
    cfg = config(overrides)
    bundle = cli.build_data(cfg)
    trainer = build_trainer(cfg, bundle, work / f"{method}-{seed}")
    tic = time.perf_counter()
    while time.perf_counter() - tic < budget:
        trainer.train_step()
    elapsed = time.perf_counter() - tic
    net = trainer.sampling_network().eval()
    evaluator = build_evaluator(cfg, bundle)
    samples = evaluator.sample(trainer.family, net)
    metrics = {k.split("/")[0]: v for k, v in evaluator.evaluate(samples).items()}
    images = trainer.step * cfg.trainer.batch_size * (cfg.trainer.d_steps + 1)
    row = {
        "method": method,
        "seed": seed,
        "steps": trainer.step,
        "images_per_s": images / elapsed,
        "final_resolution": cfg.dataset.image_size,
        **{m: metrics.get(m, float("nan")) for m in METRICS},
        "accuracy": metrics.get("accuracy", float("nan")),
    }
    if hasattr(trainer.family, "stage"):
        level, alpha = trainer.family.stage()
        row["final_resolution"], row["final_alpha"] = 4 * 2**level, alpha
    return row, samples[:16], trainer, net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--methods", nargs="+", default=["dcgan", "progan", "progan_dcgan_adam", "stylegan", "stylegan_dcgan_adam"], choices=list(METHODS)
    )
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per method and seed")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_stylegan"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    cfg = config(COMMON)
    bundle = cli.build_data(cfg)
    evaluator = build_evaluator(cfg, bundle)
    floor = {k.split("/")[0]: v for k, v in evaluator.evaluate(bundle.train.tensors()["image"]).items()}
    rows = [
        {
            "method": "real (train split)",
            "seed": "",
            "steps": "",
            "images_per_s": "",
            **{m: floor.get(m, float("nan")) for m in METRICS},
            "accuracy": floor.get("accuracy"),
        }
    ]
    previews, mixing = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            per_seed = []
            for seed in range(args.seeds):
                row, samples, trainer, net = run(method, seed, args.budget, Path(tmp))
                per_seed.append(row)
                print(f"{method} seed {seed}: {row['steps']} steps, FID/classifier {row['FID']:.2f}", flush=True)
                if seed == 0:
                    previews.append(samples)
                    if method.startswith("stylegan") and mixing is None:
                        g = torch.Generator().manual_seed(1)
                        z = torch.randn(11, trainer.family.latent_dim, generator=g)
                        with torch.no_grad():
                            mixing = trainer.family.style_mixing(net, z[:5], z[5:])
                        save_picture(render(mixing), args.out / "style_mixing.png")
            median = {
                k: statistics.median(r[k] for r in per_seed) if isinstance(per_seed[0][k], float) else per_seed[0][k] for k in per_seed[0]
            }
            median["seed"] = f"median of {args.seeds}"
            rows.append(median)

    keys = ["method", "steps", "images_per_s", "final_resolution", *METRICS]
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    print(
        f"\ndigits 16×16, {args.budget:.0f} s of training per method, {cfg.eval.num_samples} samples; "
        f"classifier accuracy {floor.get('accuracy', float('nan')):.3f}; torch threads {torch.get_num_threads()}"
    )
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(fmt(r.get(k, "")) for k in keys))
    with open(args.out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "results.json").write_text(json.dumps({"budget_s": args.budget, "rows": rows}, indent=2))
    save_picture(image_grid(torch.cat(previews), nrow=16), args.out / "samples.png")
    print(
        f"wrote {args.out}/results.csv, results.json, samples.png (one row per method)"
        + (", style_mixing.png" if mixing is not None else "")
    )


if __name__ == "__main__":
    main()
