"""Image-to-image methods on their built-in tasks under one wall-clock budget each (BENCHMARKS.md §5).

Each method is its default config on its offline task with ground truth (pix2pix: edges2digits, context encoder:
inpaint_digits, CycleGAN: digit_domains, StarGAN: digit_styles, SPADE: shapes2texture), trained by the one loop
for ``--budget`` seconds. Its sampling network then translates the held-out inputs, scored by the evaluator
against their true targets (``Family.targets``): L1, PSNR and SSIM (scikit-image), L1/PSNR inside the hole for
inpainting, the dataset classifier's class accuracy (class preservation for pix2pix and CycleGAN, the target
domain for StarGAN), mIoU of the segmenter for SPADE, and FID in the classifier's features where the task has
classes. Beside each method, the same metrics of baselines made without training: ``copy input`` (the input
itself, grey repeated to RGB), ``mean target`` (the mean training target), and for inpainting ``mean fill``
(the hole filled with the image mean, the network's input) and ``biharmonic`` (scikit-image's inpainting).

Prints a markdown table (primary metric first: the one each method must beat its baselines on) and writes
``scripts/results/NAME.{json,md,png}`` (``--name``, default translation) (the PNG: input | output | target rows of each method).

    python scripts/bench_translation.py [--methods pix2pix cyclegan] [--budget 180] [--device cpu] [--threads N]
                                        [--set KEY=VALUE …]
"""

from __future__ import annotations

import argparse
import json
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from bench_digits import CLOCKS, RESULTS, _sync, compose, train_for_seconds  # noqa: E402

from gantrain.data import to_device  # noqa: E402
from gantrain.data.masks import biharmonic_fill, fill_hole  # noqa: E402
from gantrain.visualize import Grid, render  # noqa: E402

# method: (its task, the primary metric, the baselines it is compared with)
METHODS = {
    "pix2pix": ("edges2digits", "PSNR/pixels", ("copy input", "mean target")),
    "context_encoder": ("inpaint_digits", "PSNR/hole", ("mean fill", "biharmonic", "mean target")),
    "cyclegan": ("digit_domains", "class_accuracy/classifier", ("copy input", "mean target")),
    "stargan": ("digit_styles", "class_accuracy/classifier", ("copy input", "mean target")),
    "spade": ("shapes2texture", "mIoU/segmenter", ("mean target",)),
}
COLUMNS = [
    "PSNR/pixels",
    "SSIM/pixels",
    "L1/pixels",
    "PSNR/hole",
    "L1/hole",
    "class_accuracy/classifier",
    "mIoU/segmenter",
    "L1/round_trip",
    "FID/classifier",
]


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey repeated to RGB, or RGB averaged to grey."""
    if x.shape[1] == channels:
        return x
    return x.expand(-1, channels, -1, -1) if x.shape[1] == 1 else x.mean(1, keepdim=True)


def baseline(name: str, heldout: dict, train_mean: torch.Tensor) -> torch.Tensor:
    """The untrained answer ``name`` for every held-out row."""
    target = heldout["image"]
    if name == "copy input":
        return match_channels(heldout["source"], target.shape[1])
    if name == "mean target":
        return train_mean.expand_as(target)
    if name == "mean fill":
        return fill_hole(target, heldout["mask"])
    if name == "biharmonic":
        return biharmonic_fill(target, heldout["mask"])
    raise ValueError(name)


def run(method: str, args, evaluators: dict) -> tuple[list[dict], torch.Tensor]:
    task, primary, baselines = METHODS[method]
    cfg = compose([f"model={method}", f"dataset={task}", f"trainer.device={args.device}", "trainer.eval_every=0", *args.set])
    trainer, bundle, evaluator, seconds = train_for_seconds(cfg, args.budget, evaluators, num_samples=8, clock=args.clock)
    family = trainer.family
    batch_images = cfg.trainer.batch_size * sum(p.repeats for p in family.phases(cfg.trainer.d_steps) if p.takes_batch)
    network = trainer.sampling_network().eval()
    tic = time.perf_counter()
    samples = evaluator.sample(family, network)  # also fixes the targets the baselines are scored against
    _sync(trainer.device)
    rows = [
        {
            "method": method,
            "task": task,
            "steps": trainer.step,
            "images_per_s": trainer.step * batch_images / seconds,
            "translate_s_per_1000": (time.perf_counter() - tic) / len(samples) * 1000,
            "primary": primary,
            **evaluator.evaluate(samples),
        }
    ]
    _, heldout = evaluator.inputs(family, evaluator.num_samples)
    train_mean = bundle.train.tensors()["image"].mean(0, keepdim=True) if hasattr(bundle.train, "tensors") else None
    for name in baselines:
        if name == "mean target" and train_mean is None:
            continue
        scores = evaluator.evaluate(baseline(name, heldout, train_mean))
        scores.pop("L1/round_trip", None)  # the method's round trip, kept from its sample call: a baseline makes none
        rows.append({"method": f"  {name}", "task": task, "primary": primary, **scores})
    with torch.no_grad():
        preview = next(iter(family.previews(network, trainer.fixed_inputs, to_device(trainer.heldout, trainer.device)).values()))
    k = preview.breaks[0] if preview.breaks else preview.images.shape[1]  # cells of one sample's group
    labels = preview.column_labels[: 4 * k]
    return rows, Grid(preview.images[:1, : 4 * k].cpu(), labels, (), [b for b in preview.breaks if b < 4 * k])  # 4 samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--budget", type=float, default=180.0, help="training seconds per method")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="process: the budget in CPU seconds (use with --threads 1 on a loaded machine)",
    )
    parser.add_argument("--name", default="translation", help="results file names: scripts/results/NAME.{json,md,png}")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy 2-core machine)")
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides for every method")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    evaluators: dict = {}
    rows, previews = [], {}
    for method in args.methods:
        method_rows, previews[method] = run(method, args, evaluators)
        rows += method_rows
        print(f"{method}: " + ", ".join(f"{k}={v:.4g}" for k, v in method_rows[0].items() if isinstance(v, float)), flush=True)

    fmt = lambda v: "–" if v is None else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"  # noqa: E731
    heads = ["method", "task", "steps", "images/s", "primary", *COLUMNS]
    lines = [
        f"{args.budget:g} {args.clock} s of training per method on {args.device} ({torch.get_num_threads()} threads); held-out inputs "
        "translated by the sampling network and scored against their true targets",
        "",
        "| " + " | ".join(heads) + " |",
        "|" + "|".join(["---", "---", "---:", "---:", "---", *["---:"] * len(COLUMNS)]) + "|",
    ]
    for r in rows:
        steps = str(r["steps"]) if "steps" in r else ""
        speed = f"{r['images_per_s']:.0f}" if "images_per_s" in r else ""
        primary = f"**{fmt(r.get(r['primary']))}** ({r['primary'].split('/')[0]})"
        lines.append("| " + " | ".join([r["method"], r["task"], steps, speed, primary, *(fmt(r.get(c)) for c in COLUMNS)]) + " |")
    print("\n" + "\n".join(lines))

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(
        json.dumps({"budget_s": args.budget, "clock": args.clock, "device": args.device, "rows": rows}, indent=2) + "\n"
    )
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(len(previews), 1, figsize=(6, 2.2 * len(previews)), dpi=120, squeeze=False)
    for ax, (method, images) in zip(axes[:, 0], previews.items()):
        ax.imshow(render(images).permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(f"{method} ({METHODS[method][0]}): its translation preview (input first, target last where known)", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(RESULTS / f"{args.name}.png")
    print(f"\nwrote {RESULTS / 'translation.json'}, translation.md, translation.png")


if __name__ == "__main__":
    main()
