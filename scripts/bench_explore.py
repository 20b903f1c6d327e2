"""Every ``gantrain-explore`` tool on digits models trained for a fixed number of steps (the README's
"Exploring a trained generator").

Trains, through ``gantrain.cli.train`` (the one loop, checkpoints as ``gantrain`` writes them), two DCGANs (seeds
0 and 1, for a map between two runs), a VAE and a StyleGAN (for w) on digits, each for its ``--*-steps`` with one
CPU thread, then runs every tool (``gantrain.explore.cli.explore``, what ``gantrain-explore`` runs) and prints
one markdown table of what each measured, with the CPU seconds of each training and tool (``time.process_time``
of this one-thread process: what an idle core would take, however loaded the machine). Writes
``scripts/results/explore.{md,json}`` and the tools' grids under ``scripts/results/explore/``.

    python scripts/bench_explore.py [--dcgan-steps 500] [--vae-steps 1500] [--stylegan-steps 300] [--threads 1]
                                    [--out outputs/bench_explore] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import gantrain.cli as cli
from gantrain.explore.cli import explore

RESULTS = Path(__file__).resolve().parent / "results"
QUIET = ["trainer.eval_every=0", "trainer.sample_every=100000", "trainer.log_every=100", "trainer.checkpoint_every=100000"]


def compose(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(cli.config_dir()), version_base="1.3"):
        return hydra_compose("train", overrides=overrides)


def train(name: str, overrides: list[str], steps: int, out: Path) -> tuple[Path, float]:
    """A run folder with checkpoints/last.pt after ``steps`` steps (reused when it exists), and its CPU seconds."""
    run = out / name
    seconds = run / "train_cpu_seconds.txt"
    if (run / "checkpoints" / "last.pt").is_file():
        return run, float(seconds.read_text()) if seconds.is_file() else float("nan")
    tic = time.process_time()
    cli.train(compose([*overrides, f"trainer.steps={steps}", *QUIET]), run)
    seconds.write_text(f"{time.process_time() - tic:.1f}\n")
    return run, time.process_time() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dcgan-steps", type=int, default=500)
    parser.add_argument("--vae-steps", type=int, default=1500)
    parser.add_argument("--stylegan-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="outputs/bench_explore")
    parser.add_argument("--quick", action="store_true", help="a few steps and samples: checks the script runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    quick = args.quick
    steps = {"dcgan": args.dcgan_steps, "vae": args.vae_steps, "stylegan": args.stylegan_steps}
    if quick:
        steps = dict.fromkeys(steps, 3)
    models = {
        "dcgan": ["model=dcgan"],
        "dcgan_seed1": ["model=dcgan", "seed=1"],
        "vae": ["model=vae"],
        "stylegan": ["model=stylegan"],
    }
    runs, trained = {}, {}
    for name, overrides in models.items():
        runs[name], trained[name] = train(name, overrides, steps[name.split("_")[0]], out)
        print(f"trained {name}: {steps[name.split('_')[0]]} steps, {trained[name]:.0f} CPU s", flush=True)

    small = {"num_samples": 100, "invert_steps": 5, "support": 20, "heldout": 5, "edits": 8} if quick else {}
    jobs = [
        ("interpolate", "dcgan", {}),
        ("interpolate", "stylegan", {"space": "z"}),
        ("interpolate", "stylegan", {"space": "w"}),
        ("arithmetic", "dcgan", {}),
        ("direction", "dcgan", {"attribute": "slant"}),
        ("direction", "dcgan", {"attribute": "stroke_width"}),
        ("decouple", "dcgan", {"attribute": "stroke_width", "other_attribute": "brightness"}),
        ("project", "dcgan", {}),
        ("project", "stylegan", {"space": "w"}),
        ("project", "vae", {"locate": "auto"}),
        ("map", "dcgan", {"other": "dcgan_seed1"}),
        ("map", "dcgan", {"other": "vae"}),
        ("truncation", "dcgan", {}),
        ("truncation", "stylegan", {}),
    ]
    records, rows = [], []
    figures = RESULTS / "explore"
    figures.mkdir(parents=True, exist_ok=True)
    for tool, model, settings in jobs:
        settings = dict(settings)
        if "other" in settings:
            settings["other"] = str(runs[settings["other"]])
        tag = "_".join([tool, model, *(Path(str(v)).name for v in settings.values())])
        keys = {
            "interpolate": (),
            "arithmetic": ("num_samples",),
            "direction": ("num_samples", "edits"),
            "decouple": ("num_samples", "edits"),
        }
        keys.update({"project": ("invert_steps",), "map": ("invert_steps", "support", "heldout"), "truncation": ("num_samples",)})
        settings.update({k: small[k] for k in keys[tool] if k in small})
        if quick and tool == "arithmetic":  # a 3-step model draws no 7s: groups by a property alone
            settings["terms"] = [{"sign": s, "class": None, "property": "slant", "side": side} for s, side in ((1, "high"), (-1, "low"))]
        settings["out"] = str(out / "explore" / tag)
        shutil.rmtree(settings["out"], ignore_errors=True)
        record = explore(str(runs[model]), tool, settings)
        records.append({"tag": tag, **record})
        for f in record["files"] if not quick else ():
            shutil.copy(Path(settings["out"]) / f, figures / f"{tag}__{f}")
        rows += table_rows(tool, model, settings, record)
        print(f"{tag}: {record['cpu_seconds']} CPU s", flush=True)

    lines = ["| tool | model | measured | value |", "|---|---|---|---|"]
    lines += [f"| {t} | {m} | {k} | {v} |" for t, m, k, v in rows]
    lines.append("")
    lines.append("Training (CPU s, one thread): " + ", ".join(f"{k} {steps[k.split('_')[0]]} steps {v:.0f}" for k, v in trained.items()))
    lines.append("Tools (CPU s): " + ", ".join(f"{r['tag']} {r['cpu_seconds']:.1f}" for r in records))
    table = "\n".join(lines)
    print(table)
    if not quick:
        (RESULTS / "explore.md").write_text(table + "\n")
        (RESULTS / "explore.json").write_text(json.dumps({"steps": steps, "trained_cpu_s": trained, "records": records}, indent=1) + "\n")


def fmt(x: float) -> str:
    return f"{x:.3g}"


def table_rows(tool: str, model: str, settings: dict, record: dict) -> list[tuple[str, str, str, str]]:
    """The numbers the README's table shows for one tool's record."""
    m = record["measured"]
    where = f"{model} ({m['space']})" if "space" in m else model
    if tool == "interpolate":
        return [
            (
                tool,
                where,
                "largest / mean step in classifier features (lerp → slerp)",
                f"{fmt(m['lerp']['max_over_mean_step'])} → {fmt(m['slerp']['max_over_mean_step'])}",
            )
        ]
    if tool == "arithmetic":
        terms = " ".join(f"{'+' if t['sign'] > 0 else '−'} {t['side']}-{t['property']} {t['class']}" for t in m["terms"])
        p = m["terms"][0]["property"]
        share = m["result_classes"][m["result_class"]] / sum(m["result_classes"])
        return [
            (tool, model, f"classifier's verdict on {terms}", f"{m['result_class']} ({share:.0%} of {sum(m['result_classes'])})"),
            (tool, model, f"{p}: groups → result", f"{', '.join(fmt(v) for v in m['groups'][p])} → {fmt(m['result'][p])}"),
        ]
    if tool == "direction":
        a = m["attribute"]
        others = ", ".join(f"{k} {fmt(v)}" for k, v in m["slope"].items() if k != a)
        return [(tool, model, f"slope of {a} per unit α (others)", f"{fmt(m['slope'][a])} ({others})")]
    if tool == "decouple":
        a, b = m["attribute"], m["other_attribute"]
        return [
            (tool, model, f"cos(n_{a}, n_{b})", fmt(m["cosine_n1_n2"])),
            (tool, model, f"slope of {b} editing {a}: along n₁ → n₁′", f"{fmt(m['other_slope_before'])} → {fmt(m['other_slope_after'])}"),
            (tool, model, f"slope of {a} editing {a}: along n₁ → n₁′", f"{fmt(m['before']['slope'][a])} → {fmt(m['after']['slope'][a])}"),
        ]
    if tool == "project":
        return [
            (
                tool,
                where,
                "reconstruction MSE (nearest training image's MSE)",
                f"{fmt(m['reconstruction_mse'])} ({fmt(m['nearest_train_mse'])})",
            ),
            (
                tool,
                where,
                "share of held-out images reconstructed closer than their nearest training image",
                f"{m['closer_than_nearest_train']:.0%}",
            ),
        ]
    if tool == "map":
        other = Path(record["other"]).name
        errors = ", ".join(f"{k} {fmt(v)}" for k, v in m["image_mse"].items())
        return [(tool, f"{model} → {other}", "held-out R² / image MSE against G1(z)", f"{fmt(m['r2'])} / {errors}")]
    kind = m["kind"]
    return [
        (tool, model, f"{kind} = {r[kind]}: FID / precision / recall", f"{fmt(r['FID'])} / {fmt(r['precision'])} / {fmt(r['recall'])}")
        for r in m["table"]
    ]


if __name__ == "__main__":
    main()
