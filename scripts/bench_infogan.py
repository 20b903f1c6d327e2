"""What InfoGAN's codes capture on digits (Chen et al. 2016, §7.1), after ``--budget`` seconds of training.

``model=infogan dataset=digits`` is trained by the one loop (scripts/bench_digits.py ``train_for_seconds``), then:

- the categorical code: ``--samples`` images drawn with balanced categories are classified by the digits
  classifier (the one ``eval.features=classifier`` trains and caches); the agreement of code and predicted
  digit under the best one-to-one assignment (Hungarian algorithm, scipy) is printed with the assignment
  (the paper: 5 % error on MNIST, i.e. 95 % agreement);
- each continuous code: the Pearson correlation, over samples from the prior (every code and the noise drawn
  afresh), of the code with the slant, the stroke width and the height of the images
  (gantrain/metrics/properties.py);
- previews ``scripts/results/infogan_continuous_<j>.png``: rows = categories, columns = code j swept over
  [−2, 2], one noise for the grid (the paper's Fig. 2).

    python scripts/bench_infogan.py [--budget 60] [--seed 0] [--clock process] [--threads 1] [--samples 2000] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json

import torch
from bench_digits import CLOCKS, RESULTS, compose, train_for_seconds
from scipy.optimize import linear_sum_assignment
from scipy.stats import pearsonr

from gantrain.metrics.properties import height, matched_accuracy, slant, stroke_width
from gantrain.visualize import render, save_picture

PROPERTIES = {"slant": slant, "stroke_width": stroke_width, "height": height}


@torch.no_grad()
def measure(family, network, extractor, samples: int, seed: int) -> dict:
    """The categorical code's matched accuracy (and assignment) and each continuous code's correlations."""
    generator = torch.Generator().manual_seed(seed)
    k = family.categories
    z = family.with_codes(family.sample_latent(samples, generator), torch.arange(samples) % k).to(family.device)
    images = torch.cat([network(chunk) for chunk in z.split(500)]).float().cpu()
    _, logits = extractor.extract(images, 500)
    codes, predicted = torch.arange(samples) % k, logits.argmax(1)
    counts = torch.zeros(k, int(predicted.max()) + 1, dtype=torch.long).index_put_((codes, predicted), torch.tensor(1), accumulate=True)
    rows, cols = linear_sum_assignment(counts.numpy(), maximize=True)
    properties = {name: f(images).numpy() for name, f in PROPERTIES.items()}
    _, continuous = family.split_codes(z.cpu())
    correlations = {
        f"c{j}": {name: float(pearsonr(continuous[:, j].numpy(), values)[0]) for name, values in properties.items()}
        for j in range(family.continuous_codes)
    }
    return {
        "matched_accuracy": matched_accuracy(codes, predicted),
        "assignment": {int(r): int(c) for r, c in zip(rows, cols)},
        "correlations": correlations,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = compose(
        ["model=infogan", "dataset=digits", f"trainer.device={args.device}", f"seed={args.seed}", "trainer.eval_every=0", *args.set]
    )
    trainer, _, evaluator, seconds = train_for_seconds(cfg, args.budget, {}, clock=args.clock)
    family, network = trainer.family, trainer.sampling_network().eval()
    result = {"steps": trainer.step, "seconds": seconds, **measure(family, network, evaluator.extractor, args.samples, args.seed + 1)}

    print(f"\nInfoGAN on digits 16×16, {trainer.step} steps in {seconds:.0f} {args.clock} s ({torch.get_num_threads()} threads)")
    print(f"categorical code vs the classifier's digit, best one-to-one assignment: {result['matched_accuracy']:.3f}")
    print("assignment (code → digit): " + ", ".join(f"{c}→{d}" for c, d in result["assignment"].items()))
    print("\n| code | " + " | ".join(PROPERTIES) + " |\n|---|" + "---:|" * len(PROPERTIES))
    for code, row in result["correlations"].items():
        print(f"| {code} | " + " | ".join(f"{row[name]:+.3f}" for name in PROPERTIES) + " |")

    RESULTS.mkdir(exist_ok=True)
    inputs = {"z": family.fixed_inputs(1, torch.Generator().manual_seed(args.seed))["z"].to(family.device)}
    with torch.no_grad():
        for tag, grid in family.previews(network, inputs, {}).items():
            save_picture(render(grid), RESULTS / f"infogan_{tag}.png")
    meta = {"budget_s": args.budget, "seed": args.seed, "clock": args.clock, "threads": torch.get_num_threads(), "overrides": args.set}
    (RESULTS / "infogan.json").write_text(json.dumps({"meta": meta, **result}, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'infogan.json'} and infogan_continuous_*.png")


if __name__ == "__main__":
    main()
