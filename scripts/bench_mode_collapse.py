"""Mode collapse on 2D mixtures: the PacGAN protocol (BENCHMARKS.md §1) through gantrain's own training.

For each dataset (grid25, ring8), configuration and seed: compose the config as ``gantrain <overrides>``
would, train it with ``gantrain.cli.train`` (100,000 training points drawn from the seed), generate 2,500
points with the sampling network (EMA copy when on) and score them with
``gantrain.metrics.modes.mode_coverage``. Prints mean ± standard error over seeds of modes captured,
high-quality %, reverse KL and wall-clock per run, beside PacGAN's published rows (Lin et al. 2018,
Table 1: 400 epochs at batch 100, i.e. 400,000 steps, with larger networks); writes CSV, JSON and a PNG of one seed's samples.

    python scripts/bench_mode_collapse.py                       # 10 seeds, every configuration
    python scripts/bench_mode_collapse.py --seeds 2 --steps 1000 --best-steps 3000 --configs gan pacgan2 best
    python scripts/bench_mode_collapse.py --datasets ring8 --max-seeds wgan_gp=3   # WGAN-GP costs ~8 runs of the others
    python scripts/bench_mode_collapse.py --datasets ring8 --configs best
    python scripts/bench_mode_collapse.py --seeds 0 --merge a/runs.csv b/runs.csv   # one table from earlier runs

``runs.csv`` holds one row per seed; ``seeds.png`` plots every seed's modes, HQ % and reverse KL per row, and
``samples.png`` one seed's points per row measured in this invocation.
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

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402

import gantrain.cli as cli  # noqa: E402  (registers the config's resolvers)
from gantrain import checkpoint  # noqa: E402
from gantrain.metrics.modes import mode_coverage  # noqa: E402

EVAL_POINTS = 2_500
# The remedy rows train the same small networks for the same number of steps (--steps) with the same
# batch (240, divisible by m = 2, 3, 4): they differ only by their remedy or loss. "best" is the preset
# experiment=mode_coverage with its own networks, batch, R1, learning-rate decay and steps (--best-steps).
# PacGAN's own networks and schedule (400,000 steps) are the preset experiment=pacgan, far beyond a CPU
# benchmark's budget.
SMALL = [
    "model=mlp",
    "model.generator.hidden=[128,128,128]",
    "model.generator.batch_norm=false",
    "model.discriminator.hidden=[128,128,128]",
    "model.discriminator.pieces=1",
    "trainer.batch_size=240",
]
ADAM = ["optimizer.lr=1e-3", "optimizer.betas=[0.5,0.9]"]
CONFIGS = {
    "gan": SMALL + ADAM,
    "pacgan2": SMALL + ADAM + ["model.pack=2"],
    "pacgan3": SMALL + ADAM + ["model.pack=3"],
    "pacgan4": SMALL + ADAM + ["model.pack=4"],
    # the wgan_gp preset: gradient penalty λ = 10, 5 critic updates per G update, Adam(1e-4, β = (0, 0.9))
    "wgan_gp": SMALL + ["loss=wgan_gp"],
    "best": ["experiment=mode_coverage"],
}
# PacGAN Table 1 (10 trials): modes, HQ %, reverse KL
PUBLISHED = {
    ("grid25", "gan"): (17.3, 94.8, 0.70),
    ("grid25", "pacgan2"): (23.8, 91.3, 0.13),
    ("grid25", "pacgan3"): (24.6, 94.2, 0.06),
    ("grid25", "pacgan4"): (24.8, 93.6, 0.04),
    ("ring8", "gan"): (6.3, 98.2, 0.45),
    ("ring8", "pacgan4"): (7.8, 95.9, 0.07),
}
QUIET = ["trainer.log_every=500", "trainer.num_samples=2500"]


def config(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(cli.config_dir()), version_base="1.3"):
        return compose("train", overrides=overrides)


def sampling_generator(cfg, run_dir: Path) -> torch.nn.Module:
    """The trained run's sampling network (its EMA copy when it has one), from checkpoints/last.pt."""
    state = checkpoint.load(run_dir / "checkpoints" / "last.pt")
    family = cli.build_family(cfg)
    family.load_state_dict(state["networks"])
    if state["ema"] is not None:
        ema = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
        family.networks[family.sample_network].load_state_dict(ema)
    return family


def run_one(dataset: str, overrides: list[str], seed: int, workdir: Path):
    cfg = config([*overrides, f"dataset={dataset}", f"seed={seed}", *QUIET])
    steps = cfg.trainer.steps
    cfg.trainer.sample_every = cfg.trainer.checkpoint_every = steps
    run_dir = workdir / f"{dataset}-{abs(hash(tuple(overrides)))}-{seed}"
    tic = time.perf_counter()
    cli.train(cfg, run_dir)
    seconds = time.perf_counter() - tic
    bundle = cli.build_data(cfg)
    family = sampling_generator(cfg, run_dir).eval()
    with torch.no_grad():
        inputs = family.fixed_inputs(EVAL_POINTS, torch.Generator().manual_seed(10_000 + seed))
        points = family.generate(inputs)
    result = mode_coverage(points, bundle.mixture)
    result.update(seconds=seconds, steps=steps, batch_size=cfg.trainer.batch_size)
    return result, points, bundle.mixture


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (NaN for a single value); NaNs (a reverse KL with no high-quality
    point to make a histogram of) are left out."""
    values = [v for v in values if not math.isnan(v)] or [math.nan]
    n = len(values)
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(n) if n > 1 else float("nan")


def median_kl(runs: list[dict]) -> float:
    """Median reverse KL over the seeds that have one (NaN: no high-quality point)."""
    values = [r["reverse_kl"] for r in runs if not math.isnan(r["reverse_kl"])]
    return statistics.median(values) if values else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, first-seed + 1, ...")
    parser.add_argument("--datasets", nargs="+", default=["grid25", "ring8"])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_mode_collapse"))
    parser.add_argument("--steps", type=int, default=3000, help="training steps of every remedy row")
    parser.add_argument("--best-steps", type=int, default=None, help="training steps of the best row (default: its preset's own)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (small networks: 1 is fastest)")
    parser.add_argument(
        "--override",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="extra overrides for every row, e.g. model.latent=normal (the remedy rows' own prior)",
    )
    parser.add_argument(
        "--max-seeds", nargs="*", default=[], metavar="CONFIG=N", help="run only the first N seeds of CONFIG (a slow row), e.g. wgan_gp=3"
    )
    parser.add_argument(
        "--merge",
        nargs="*",
        type=Path,
        default=[],
        metavar="RUNS_CSV",
        help="runs.csv files of earlier invocations: their rows join the table; a (dataset, config) "
        "measured by this invocation or found in a later file replaces earlier rows",
    )
    args = parser.parse_args()
    max_seeds = {name: int(n) for name, n in (item.split("=") for item in args.max_seeds)}
    torch.set_num_threads(args.threads)
    configs = list(args.configs)
    if "wgan_gp" in configs and not (cli.config_dir() / "loss" / "wgan_gp.yaml").is_file():
        print("loss=wgan_gp is not in this installation: skipping the WGAN-GP row")
        configs.remove("wgan_gp")
    args.out.mkdir(parents=True, exist_ok=True)

    rows, samples, mixtures = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets:
            for name in configs:
                count = min(args.seeds, max_seeds.get(name, args.seeds))
                for seed in range(args.first_seed, args.first_seed + count):
                    steps = args.best_steps if name == "best" else args.steps
                    overrides = CONFIGS[name] + ([f"trainer.steps={steps}"] if steps else []) + args.override
                    result, points, mixtures[dataset] = run_one(dataset, overrides, seed, Path(tmp))
                    rows.append({"dataset": dataset, "config": name, "seed": seed, **result})
                    samples.setdefault((dataset, name), (seed, points))
                    print(
                        f"{dataset:7s} {name:8s} seed {seed}: {result['modes']}/{result['num_modes']} modes, "
                        f"HQ {100 * result['hq_fraction']:.1f} %, rev KL {result['reverse_kl']:.3f}, "
                        f"{result['seconds']:.1f} s",
                        flush=True,
                    )

    measured = {(r["dataset"], r["config"]) for r in rows}
    rows = [r for r in read_rows(args.merge) if (r["dataset"], r["config"]) not in measured] + rows
    if not rows:
        raise SystemExit("nothing to report: no run was measured and no --merge file was given")
    table = sorted(
        {(r["dataset"], r["config"]) for r in rows},
        key=lambda key: (["grid25", "ring8"].index(key[0]) if key[0] in ("grid25", "ring8") else 2, list(CONFIGS).index(key[1])),
    )
    summary = []
    header = (
        f"{'dataset':7s} {'config':8s} {'steps':>6s} {'modes':>13s} {'HQ %':>12s} {'reverse KL':>15s} "
        f"{'s/run':>6s} {'all seeds ok':>12s}   published (modes / HQ % / KL)"
    )
    print(f"\nmean ± standard error over seeds; 'ok' = all modes, HQ > 97 %, reverse KL < 0.02\n{header}")
    for dataset, name in table:
        runs = [r for r in rows if r["dataset"] == dataset and r["config"] == name]
        modes, hq, kl, sec = (mean_se([r[k] for r in runs]) for k in ("modes", "hq_fraction", "reverse_kl", "seconds"))
        ok = sum(r["modes"] == r["num_modes"] and r["hq_fraction"] > 0.97 and r["reverse_kl"] < 0.02 for r in runs)
        pub = PUBLISHED.get((dataset, name))
        summary.append(
            {
                "dataset": dataset,
                "config": name,
                "overrides": CONFIGS[name],
                "seeds": len(runs),
                "steps": runs[0]["steps"],
                "modes": modes,
                "hq_percent": [100 * v for v in hq],
                "reverse_kl": kl,
                "reverse_kl_median": median_kl(runs),
                "seconds": sec,
                "seeds_ok": ok,
                "published": pub,
            }
        )
        print(
            f"{dataset:7s} {name:8s} {runs[0]['steps']:6d} {modes[0]:6.2f} ± {modes[1]:4.2f} "
            f"{100 * hq[0]:5.1f} ± {100 * hq[1]:4.1f} {kl[0]:7.3f} ± {kl[1]:5.3f} {sec[0]:6.1f} "
            f"{ok:>5d}/{len(runs):<6d}   " + (f"{pub[0]} / {pub[1]} / {pub[2]}" if pub else "")
        )

    with open(args.out / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot_seeds(rows, table, args.out / "seeds.png")
    if samples:
        plot_samples(samples, mixtures, args.out / "samples.png")
    print(f"wrote {args.out}/runs.csv, summary.json, seeds.png" + (", samples.png" if samples else ""))


FIELDS = ["dataset", "config", "seed", "steps", "batch_size", "modes", "num_modes", "hq_fraction", "reverse_kl", "seconds"]


def read_rows(paths: list[Path]) -> list[dict]:
    """Per-seed rows of earlier runs.csv files (numbers parsed back); a (dataset, config) found in a later file
    replaces its rows from the earlier ones."""
    rows = []
    for path in paths:
        with open(path, newline="") as f:
            found = []
            for row in csv.DictReader(f):
                found.append(
                    {
                        "dataset": row["dataset"],
                        "config": row["config"],
                        "seed": int(row["seed"]),
                        "steps": int(row["steps"]),
                        "batch_size": int(row.get("batch_size") or 0),
                        "modes": int(row["modes"]),
                        "num_modes": int(row["num_modes"]),
                        "hq_fraction": float(row["hq_fraction"]),
                        "reverse_kl": float(row["reverse_kl"]),
                        "seconds": float(row["seconds"]),
                    }
                )
        replaced = {(r["dataset"], r["config"]) for r in found}
        rows = [r for r in rows if (r["dataset"], r["config"]) not in replaced] + found
    return rows


def plot_seeds(rows: list[dict], table: list[tuple[str, str]], path: Path) -> None:
    """One panel per dataset and metric, one dot per seed and configuration."""
    datasets = list(dict.fromkeys(d for d, _ in table))
    metrics = [("modes", "modes captured", 1), ("hq_fraction", "HQ %", 100), ("reverse_kl", "reverse KL", 1)]
    fig, axes = plt.subplots(len(datasets), 3, figsize=(12, 3 * len(datasets)), squeeze=False)
    for i, dataset in enumerate(datasets):
        names = [name for d, name in table if d == dataset]
        for j, (key, label, scale) in enumerate(metrics):
            ax = axes[i][j]
            for x, name in enumerate(names):
                values = [scale * r[key] for r in rows if r["dataset"] == dataset and r["config"] == name]
                ax.scatter([x] * len(values), values, s=14, alpha=0.6)
            ax.set_xticks(range(len(names)), [n.replace("best", "mode_cov.") for n in names], fontsize=7)
            ax.set_title(f"{dataset}: {label} (one dot per seed)", fontsize=9)
            if key == "reverse_kl":
                ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_samples(samples: dict, mixtures: dict, path: Path) -> None:
    """The first seed's generated points for every (dataset, configuration) measured, means as red crosses."""
    datasets = list(dict.fromkeys(d for d, _ in samples))
    columns = max(sum(d == dataset for d, _ in samples) for dataset in datasets)
    fig, axes = plt.subplots(len(datasets), columns, figsize=(2.6 * columns, 2.6 * len(datasets)), squeeze=False)
    for i, dataset in enumerate(datasets):
        means = mixtures[dataset].means
        for j, name in enumerate(name for d, name in samples if d == dataset):
            ax, (seed, pts) = axes[i][j], samples[(dataset, name)]
            ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.4)
            ax.scatter(means[:, 0], means[:, 1], s=8, c="red", marker="x")
            ax.set_title(f"{dataset} {name} (seed {seed})", fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
            lim = 1.1 * float(means.abs().max()) + 0.5
            ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
