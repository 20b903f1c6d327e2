"""Image quality on digits under one wall-clock budget per method (BENCHMARKS.md §2).

Each method is its default config (``model=<method> dataset=digits``) trained by the one loop
(``Trainer.train_step``: the updates, EMA and data stream of ``gantrain``) for ``--budget`` seconds. Its
sampling network (the EMA copy where the config keeps one) then generates ``--eval-samples`` images from the
evaluation latents (class-balanced labels for conditional models), scored against the held-out split in the
feature space of the digits classifier (``eval.features=classifier``: trained once on the train split and
cached; its held-out accuracy is printed): classifier-FID, IS (10 splits), KID, precision/recall (k = 3),
density/coverage (k = 5), the KL of the predicted-class histogram to uniform, for class-conditional models the
share of samples the classifier assigns to the class they were drawn for (``class_accuracy``), and the sampling
time per 1,000 images, on the training budget's clock (e.g. ``--methods dcgan ddpm vae --budget 150`` compares a GAN, a denoiser and a VAE). The first row is the floor:
the training split (1,437 images) scored as if generated — fewer samples than the methods' rows, which
biases its FID upwards a little.

Prints a markdown table and writes ``scripts/results/<--name>.{json,csv,png}`` (default ``digits``) (the PNG: 100 samples of each
method). Methods are config names, so any model that lands (ddpm, vae, stylegan, progan …) can be listed.

    python scripts/bench_digits.py [--methods dcgan mlp cgan acgan] [--budget 60] [--eval-samples 5000]
                                   [--device cpu] [--threads N] [--seed 0] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from hydra import compose as hydra_compose  # noqa: E402
from hydra import initialize_config_dir  # noqa: E402

import gantrain.cli as cli  # noqa: E402
from gantrain.data import BatchStream, take  # noqa: E402
from gantrain.metrics import build_evaluator  # noqa: E402
from gantrain.trainer import Trainer  # noqa: E402
from gantrain.visualize import image_grid  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# methods trained on another dataset than digits (their rows score against that dataset's held-out split)
DATASET_OF = {"gan_int_cls": "captioned_digits"}
COLUMNS = ["FID", "IS", "KID", "precision", "recall", "density", "coverage", "class_KL", "class_accuracy"]


def compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(cli.config_dir()), version_base="1.3"):
        return hydra_compose("train", overrides=overrides)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


def train_for_seconds(cfg, budget: float, evaluators: dict, num_samples: int = 100, clock: str = "wall"):
    """Build ``cfg``'s data, family and optimizers and train them by the one loop (``Trainer.train_step``) for
    ``budget`` seconds in a temporary run folder. The evaluator is built once per dataset (``evaluators``,
    before the clock starts). ``clock="process"`` counts this process's CPU seconds instead of wall seconds: with
    one thread, the time an idle core would take, however loaded the machine is. Returns the trainer, the data,
    the evaluator and the seconds trained (on that clock)."""
    cli.check_config(cfg)
    device = cli.pick_device(cfg.trainer.device)
    cli.seed_everything(cfg.seed)
    bundle = cli.build_data(cfg)
    family = cli.build_family(cfg).to(device)
    optimizers = cli.build_optimizers(cfg, family, cfg.trainer.d_steps)
    stream = BatchStream(bundle.train, cfg.trainer.batch_size, seed=cfg.seed)
    if cfg.dataset.name not in evaluators:  # one classifier and one set of real features for every method
        evaluators[cfg.dataset.name] = build_evaluator(cfg, bundle, device)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(
            family,
            stream,
            optimizers,
            Path(run_dir),
            steps=10**9,
            d_steps=cfg.trainer.d_steps,
            ema=cfg.trainer.ema,
            ema_start=cfg.trainer.ema_start,
            lr_decay_start=1.0,  # a schedule over 10**9 steps would not decay; the budget ends the run
            num_samples=num_samples,
            seed=cfg.seed,
            heldout=take(bundle.heldout, num_samples),
        )
        trainer.writer.close()
        _sync(device)
        now = CLOCKS[clock]
        tic = now()
        while now() - tic < budget:
            trainer.train_step()
        _sync(device)
        seconds = now() - tic
    return trainer, bundle, evaluators[cfg.dataset.name], seconds


def train_for(method: str, args, evaluators: dict) -> tuple[dict, torch.Tensor]:
    """Train ``method`` for ``args.budget`` seconds; return its row of metrics and 100 samples."""
    cfg = compose(
        [
            f"model={method}",
            f"dataset={DATASET_OF.get(method, 'digits')}",
            f"trainer.device={args.device}",
            f"seed={args.seed}",
            "trainer.eval_every=0",
            f"eval.num_samples={args.eval_samples}",
            *args.set,
        ]
    )
    trainer, _, evaluator, seconds = train_for_seconds(cfg, args.budget, evaluators, clock=args.clock)
    family, device = trainer.family, trainer.device
    images_per_step = cfg.trainer.batch_size * sum(p.repeats for p in family.phases(cfg.trainer.d_steps) if p.takes_batch)
    now = CLOCKS[args.clock]  # sampling time on the training budget's clock
    tic = now()
    samples = evaluator.sample(family, trainer.sampling_network().eval())  # the EMA copy where there is one
    _sync(device)
    sampling = now() - tic
    metrics = evaluator.evaluate(samples)
    row = {
        "method": method,
        "steps": trainer.step,
        "images_per_s": trainer.step * images_per_step / seconds,
        **{c: metrics.get(f"{c}/classifier") for c in COLUMNS},
        "sample_s_per_1000": sampling / len(samples) * 1000,
    }
    return row, samples[:100]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["dcgan", "mlp", "cgan", "acgan"], help="model config names")
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds per method")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="process: the budget in CPU seconds (use with --threads 1 on a loaded machine)",
    )
    parser.add_argument("--eval-samples", type=int, default=5000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides for every method")
    parser.add_argument("--name", default="digits", help="stem of the result files under scripts/results/")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    evaluators: dict = {}
    rows, previews = [], {}
    for method in args.methods:
        row, previews[method] = train_for(method, args, evaluators)
        rows.append(row)
        print(f"{method}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    evaluator = evaluators.get("digits") or next(iter(evaluators.values()))
    floor = evaluator.evaluate(evaluator.bundle.train.tensors()["image"])
    rows.insert(
        0,
        {
            "method": "real (train split)",
            "steps": None,
            "images_per_s": None,
            **{c: floor.get(f"{c}/classifier") for c in COLUMNS},
            "class_accuracy": None,  # the training images were drawn for no class
            "sample_s_per_1000": None,
        },
    )
    accuracy = evaluator.extractor.accuracy

    print(
        f"\ndigits 16×16: {args.budget:g} {args.clock} s of training per method on {args.device} ({torch.get_num_threads()} threads); "
        f"{args.eval_samples} samples vs the {len(evaluator.bundle.heldout)} held-out images in the classifier's features "
        f"(held-out accuracy {accuracy:.3f})\n"
    )
    heads = ["method", "steps", "images/s", *COLUMNS, "sampling s / 1000"]
    print("| " + " | ".join(heads) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(heads) - 1)) + "|")
    fmt = lambda v, spec: "–" if v is None else format(v, spec)  # noqa: E731
    for r in rows:
        cells = [
            r["method"],
            fmt(r["steps"], "d"),
            fmt(r["images_per_s"], ".0f"),
            fmt(r["FID"], ".2f"),
            fmt(r["IS"], ".2f"),
            fmt(r["KID"], ".3g"),
            *(fmt(r[c], ".3f") for c in ("precision", "recall", "density", "coverage", "class_KL", "class_accuracy")),
            fmt(r["sample_s_per_1000"], ".2f"),
        ]
        print("| " + " | ".join(cells) + " |")

    RESULTS.mkdir(exist_ok=True)
    meta = {
        "budget_s": args.budget,
        "clock": args.clock,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "eval_samples": args.eval_samples,
        "heldout": len(evaluator.bundle.heldout),
        "classifier_accuracy": accuracy,
        "overrides": args.set,
    }
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    with open(RESULTS / f"{args.name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["method", "steps", "images_per_s", *COLUMNS, "sample_s_per_1000"])
        writer.writeheader()
        writer.writerows(rows)
    fig, axes = plt.subplots(1, len(previews), figsize=(3.2 * len(previews), 3.6), dpi=110, squeeze=False)
    for ax, (method, images) in zip(axes[0], previews.items()):
        row = next(r for r in rows if r["method"] == method)
        ax.imshow(image_grid(images, 10).permute(1, 2, 0).numpy())
        ax.set_title(f"{method}: {row['steps']} steps, FID {row['FID']:.1f}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(RESULTS / f"{args.name}.png")
    print(f"\nwrote {RESULTS / args.name}.json, .csv and .png")


if __name__ == "__main__":
    main()
