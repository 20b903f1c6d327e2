"""Caption consistency of a text-to-image GAN on captioned digits: does it draw what the caption asks?

Trains ``model=gan_int_cls dataset=captioned_digits`` (or ``--model``) by the one loop for ``--budget`` seconds
(scripts/bench_digits.py's ``train_for_seconds``), then, for every (class, property value) combination — 10
classes × 9 values (thin / regular / thick, left / upright / right, small / medium / large) — generates
``--per-combination`` samples for its canonical caption ("a thick seven") from the sampling network (EMA copy where
kept) and measures:

- class accuracy: the digits classifier (eval.features=classifier, trained on the training split) predicts the
  asked class;
- property accuracy: the sample's measured property (gantrain/metrics/properties.py) falls in the asked tertile of
  the asked class (the bins the captions were written with; chance: 1/3);

averaged over the combinations seen in training and over the held-out ones (dataset.heldout_combinations, never
trained on). Also prints the evaluator's metrics on the held-out split's own captions (``class_accuracy``: the
class each caption names). Writes scripts/results/caption_consistency.json.

    python scripts/caption_consistency.py --budget 60 --clock process --threads 1 [--per-combination 20]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_digits import CLOCKS, RESULTS, compose, train_for_seconds  # noqa: E402

from gantrain.data.captions import PROPERTY_OF, VALUES, digit_thresholds, parse_combinations, prompt, property_values  # noqa: E402


@torch.no_grad()
def consistency(family, network, classify, thresholds: dict, held: set, per_combination: int, seed: int = 0) -> list[dict]:
    """One record per (class, value): its caption, whether it was held out, class and property accuracy."""
    records = []
    generator = torch.Generator().manual_seed(seed)
    for label in range(10):
        for value in [v for values in VALUES.values() for v in values]:
            text = prompt(label, value)
            inputs = {k: v.to(family.device) for k, v in family.prompt_inputs([text], per_combination, generator).items()}
            images = family.generate(inputs, network).float().cpu()
            labels = torch.full((len(images),), label)
            measured = property_values(images, labels, thresholds)[PROPERTY_OF[value]]
            records.append(
                {
                    "caption": text,
                    "class": label,
                    "value": value,
                    "held_out": (label, value) in held,
                    "class_accuracy": float((classify(images).argmax(1) == labels).double().mean()),
                    "property_accuracy": sum(m == value for m in measured) / len(measured),
                }
            )
    return records


def summary(records: list[dict]) -> dict:
    out = {}
    for name, held in (("seen", False), ("held_out", True)):
        chosen = [r for r in records if r["held_out"] == held]
        out[name] = {
            "combinations": len(chosen),
            "class_accuracy": sum(r["class_accuracy"] for r in chosen) / len(chosen),
            "property_accuracy": sum(r["property_accuracy"] for r in chosen) / len(chosen),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gan_int_cls")
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--per-combination", type=int, default=20)
    parser.add_argument("--eval-samples", type=int, default=2000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = compose(
        [f"model={args.model}", "dataset=captioned_digits", f"trainer.device={args.device}", f"seed={args.seed}", "trainer.eval_every=0"]
        + [f"eval.num_samples={args.eval_samples}", *args.set]
    )
    trainer, _, evaluator, seconds = train_for_seconds(cfg, args.budget, {}, clock=args.clock)
    network = trainer.sampling_network().eval()
    trainer.family.eval()
    source = cfg.dataset.source
    thresholds = digit_thresholds(cfg.dataset.image_size, source.holdout, source.seed)
    held = set(parse_combinations(source.heldout_combinations))
    classifier = evaluator.extractor
    records = consistency(
        trainer.family, network, lambda x: classifier.extract(x.to(trainer.device))[1].cpu(), thresholds, held, args.per_combination
    )
    with torch.no_grad():
        metrics = evaluator.evaluate(evaluator.sample(trainer.family, network))
    result = {
        "meta": {
            "model": args.model,
            "budget_s": args.budget,
            "clock": args.clock,
            "threads": torch.get_num_threads(),
            "steps": trainer.step,
            "seconds": seconds,
            "per_combination": args.per_combination,
            "classifier_accuracy": classifier.accuracy,
            "heldout_combinations": sorted(held),
            "overrides": args.set,
        },
        "summary": summary(records),
        "heldout_captions": {k: v for k, v in metrics.items() if k.split("/")[0] in ("FID", "class_accuracy", "precision", "recall")},
        "combinations": records,
    }
    print(
        f"\n{args.model} on captioned_digits: {trainer.step} steps in {args.budget:g} {args.clock} s; classifier held-out accuracy {classifier.accuracy:.3f}\n"
    )
    print("| combinations | n | class accuracy | property accuracy (chance 0.333) |")
    print("|---|---:|---:|---:|")
    for name, s in result["summary"].items():
        print(f"| {name} | {s['combinations']} | {s['class_accuracy']:.3f} | {s['property_accuracy']:.3f} |")
    for r in records:
        if r["held_out"]:
            print(f"  held out: {r['caption']!r}: class {r['class_accuracy']:.2f}, property {r['property_accuracy']:.2f}")
    print("held-out split's captions: " + ", ".join(f"{k}={v:.4g}" for k, v in result["heldout_captions"].items()))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "caption_consistency.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS / 'caption_consistency.json'}")


if __name__ == "__main__":
    main()
