"""DCGAN, DDPM and the VAE on digits for the same wall-clock training budget (BENCHMARKS.md §2).

Each method is composed from its default config (``model=dcgan|ddpm|vae dataset=digits``) and trained by the
one loop (``Trainer.train_step``: the same updates, EMA and data stream as ``gantrain``) until ``--budget``
seconds have passed. Then its sampling network (the EMA copy where the config has one: DDPM) generates
``--eval-samples`` images from the evaluation latents, timed, and the project's metrics score them against the
held-out split in the feature space of the digits classifier (``eval.features=classifier``, trained once
and cached). The first row is the floor: the training split scored as if it were generated.

Prints a table (steps, images/s, classifier-FID, KID, sampling seconds per 1000 images) and writes
``scripts/results/generators.{json,csv,png}``; the PNG holds each method's 100 preview samples side by side.
FID from 2,000 samples is biased upwards against 5,000 (BENCHMARKS.md); all rows use the same number.

    python scripts/bench_generators.py [--budget 150] [--methods dcgan ddpm vae] [--eval-samples 2000]
                                       [--device cpu] [--threads N] [--seed 0] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

import gantrain.cli as cli  # noqa: E402
from gantrain.data import BatchStream, take  # noqa: E402
from gantrain.metrics import build_evaluator  # noqa: E402
from gantrain.trainer import Trainer  # noqa: E402
from gantrain.visualize import image_grid  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_method(model: str, args, evaluator_cache: dict) -> tuple[dict, torch.Tensor]:
    overrides = [f"model={model}", "dataset=digits", f"trainer.device={args.device}", f"seed={args.seed}",
                 "trainer.eval_every=0", f"eval.num_samples={args.eval_samples}", *args.set]
    with initialize_config_dir(config_dir=str(cli.config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    cli.check_trainer(cfg)
    device = cli.pick_device(cfg.trainer.device)
    cli.seed_everything(cfg.seed)
    bundle = cli.build_data(cfg)
    family = cli.build_family(cfg).to(device)
    optimizers = cli.build_optimizers(cfg, family, cfg.trainer.d_steps)
    stream = BatchStream(bundle.train, cfg.trainer.batch_size, seed=cfg.seed)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(family, stream, optimizers, Path(run_dir), steps=10**9, d_steps=cfg.trainer.d_steps,
                          ema=cfg.trainer.ema, num_samples=100, seed=cfg.seed,
                          preview_real=take(bundle.heldout, 100)["image"])
        trainer.writer.close()
        images_per_step = cfg.trainer.batch_size * sum(r for _, r in family.phases(cfg.trainer.d_steps))
        _sync(device)
        tic = time.perf_counter()
        while time.perf_counter() - tic < args.budget:
            logs = trainer.train_step()
        _sync(device)
        train_s = time.perf_counter() - tic
        trainer.check_finite()
        if "evaluator" not in evaluator_cache:
            evaluator_cache["evaluator"] = build_evaluator(cfg, bundle, device)
        evaluator = evaluator_cache["evaluator"]
        net = trainer.sampling_network().eval()  # the EMA copy where there is one
        with torch.no_grad():
            preview = family.generate(trainer.fixed_inputs, net).cpu()
            _sync(device)
            tic = time.perf_counter()
            samples = evaluator.sample(family, net)
            _sync(device)
            sample_s = time.perf_counter() - tic
    metrics = evaluator.evaluate(samples)
    row = {
        "method": model,
        "steps": trainer.step,
        "images_per_s": trainer.step * images_per_step / train_s,
        "FID": metrics["FID/classifier"],
        "KID": metrics["KID/classifier"],
        "sample_s_per_1000": sample_s / len(samples) * 1000,
        "final_loss": {k: round(float(v), 4) for k, v in logs.items() if k.startswith(("loss/", "elbo/"))},
    }
    return row, preview


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=150.0, help="training seconds per method")
    parser.add_argument("--methods", nargs="+", default=["dcgan", "ddpm", "vae"])
    parser.add_argument("--eval-samples", type=int, default=2000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides for every method")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cache: dict = {}
    rows, previews = [], {}
    for model in args.methods:
        row, previews[model] = run_method(model, args, cache)
        rows.append(row)
        print(f"{model}: {row}", file=sys.stderr, flush=True)
    evaluator = cache["evaluator"]
    floor = evaluator.evaluate(evaluator.bundle.train.tensors()["image"])
    rows.insert(0, {"method": "real (train split)", "steps": None, "images_per_s": None,
                    "FID": floor["FID/classifier"], "KID": floor["KID/classifier"], "sample_s_per_1000": None})
    accuracy = getattr(evaluator.extractor, "accuracy", float("nan"))

    print(f"\ndigits 16×16, {args.budget:.0f} s of training per method on {args.device} "
          f"({torch.get_num_threads()} torch threads); classifier-FID/KID of {args.eval_samples} samples "
          f"vs the held-out split; classifier held-out accuracy {accuracy:.3f}\n")
    print(f"| {'method':<18} | {'steps':>6} | {'images/s':>8} | {'FID':>7} | {'KID':>7} | {'sampling s / 1000':>17} |")
    print(f"|{'-' * 20}|{'-' * 8}:|{'-' * 10}:|{'-' * 9}:|{'-' * 9}:|{'-' * 19}:|")
    fmt = lambda v, spec: "–" if v is None else format(v, spec)  # noqa: E731
    for r in rows:
        print(f"| {r['method']:<18} | {fmt(r['steps'], 'd'):>6} | {fmt(r['images_per_s'], '.0f'):>8} | "
              f"{r['FID']:>7.2f} | {r['KID']:>7.3f} | {fmt(r['sample_s_per_1000'], '.2f'):>17} |")

    OUT.mkdir(exist_ok=True)
    meta = {"budget_s": args.budget, "device": args.device, "threads": torch.get_num_threads(),
            "eval_samples": args.eval_samples, "classifier_accuracy": accuracy, "overrides": args.set}
    (OUT / "generators.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    with open(OUT / "generators.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["method", "steps", "images_per_s", "FID", "KID", "sample_s_per_1000"],
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    fig, axes = plt.subplots(1, len(previews), figsize=(4 * len(previews), 4.4), dpi=120)
    for ax, (model, images) in zip([axes] if len(previews) == 1 else axes, previews.items()):
        row = next(r for r in rows if r["method"] == model)
        ax.imshow(image_grid(images, 10).permute(1, 2, 0).numpy())
        ax.set_title(f"{model}: {row['steps']} steps, FID {row['FID']:.1f}", fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(OUT / "generators.png")
    print(f"\nwrote {OUT / 'generators.json'}, .csv and .png")


if __name__ == "__main__":
    main()
