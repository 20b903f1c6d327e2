"""Every adversarial loss on the 25-Gaussian grid (BENCHMARKS.md §1's metric), same networks and steps.

For each ``loss=`` option (with its preset companions: WGAN's clipping and RMSProp, WGAN-GP's penalty and
Adam(1e-4, (0, 0.9)), k = 5 for both), compose ``model=mlp dataset=grid25 loss=<loss>`` as ``gantrain`` would,
train ``--steps`` steps through the one loop (``Trainer.train_step``; no previews or checkpoints), generate
2,500 points with the generator in eval mode and score them with ``gantrain.metrics.modes.mode_coverage``
(modes captured, high-quality %, reverse KL to uniform). A step is k discriminator updates and one generator
update, so the Wasserstein rows cost about 3× more per step; the table reports seconds per run.

Prints a table (mean ± standard error over seeds) and writes ``scripts/results/losses_grid25.{csv,json,png}``;
the PNG holds seed 0's samples of every loss over the mixture's means.

    python scripts/bench_losses_grid25.py [--steps 1000] [--seeds 1] [--losses minimax wgan_gp ...]
                                          [--threads 1] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from bench_mode_collapse import mean_se  # noqa: E402  (this folder is on sys.path when run as a script)
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402

import gantrain.cli as cli  # noqa: E402  (registers the config's resolvers)
from gantrain.data import BatchStream  # noqa: E402
from gantrain.metrics.modes import mode_coverage  # noqa: E402
from gantrain.trainer import Trainer  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
EVAL_POINTS = 2_500
LOSSES = sorted(p.stem for p in (cli.config_dir() / "loss").glob("*.yaml"))


def config(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(cli.config_dir()), version_base="1.3"):
        return compose("train", overrides=overrides)


def run_one(loss: str, seed: int, args, workdir: Path) -> tuple[dict, torch.Tensor]:
    cfg = config(["model=mlp", "dataset=grid25", f"loss={loss}", f"seed={seed}", "trainer.device=cpu", *args.set])
    cli.seed_everything(cfg.seed)
    bundle = cli.build_data(cfg)
    family = cli.build_family(cfg)
    optimizers = cli.build_optimizers(cfg, family, cfg.trainer.d_steps)
    stream = BatchStream(bundle.train, cfg.trainer.batch_size, seed=cfg.seed)
    trainer = Trainer(family, stream, optimizers, workdir / f"{loss}-{seed}", steps=args.steps, d_steps=cfg.trainer.d_steps)
    tic = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    seconds = time.perf_counter() - tic
    with torch.no_grad():
        points = trainer.sample(family.fixed_inputs(EVAL_POINTS, torch.Generator().manual_seed(10_000 + seed))).cpu()
    finite = bool(torch.isfinite(points).all())
    result = (
        mode_coverage(points, bundle.mixture)
        if finite
        else {"modes": 0, "num_modes": len(bundle.mixture.means), "hq_fraction": 0.0, "reverse_kl": math.nan}
    )
    result.update(
        seconds=seconds,
        steps=args.steps,
        d_steps=cfg.trainer.d_steps,
        finite=finite,
        regularizers=",".join(cfg.regularizer) or "none",
        optimizer=cfg.optimizer._target_.split(".")[-1],
        lr=cfg.optimizer.lr,
    )
    return result, points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--losses", nargs="+", default=LOSSES, choices=LOSSES)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (small networks: 1 is fastest)")
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides for every run, e.g. trainer.batch_size=128")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)

    rows, samples = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for loss in args.losses:
            for seed in range(args.seeds):
                result, points = run_one(loss, seed, args, Path(tmp))
                rows.append({"loss": loss, "seed": seed, **result})
                samples.setdefault(loss, points)
                print(
                    f"{loss:22s} seed {seed}: {result['modes']}/{result['num_modes']} modes, "
                    f"HQ {100 * result['hq_fraction']:.1f} %, rev KL {result['reverse_kl']:.3f}, "
                    f"{result['seconds']:.1f} s",
                    flush=True,
                )

    print(
        f"\ngrid25, model=mlp, {args.steps} steps, {args.seeds} seed(s), mean ± standard error; "
        f"{EVAL_POINTS} points; 'ok' = all 25 modes, HQ > 97 %, reverse KL < 0.02"
    )
    print(
        f"{'loss':22s} {'k':>2s} {'regularizer':16s} {'optimizer':>16s} {'modes':>12s} {'HQ %':>12s} "
        f"{'reverse KL':>14s} {'s/run':>6s} {'ok':>5s}"
    )
    summary = []
    for loss in args.losses:
        runs = [r for r in rows if r["loss"] == loss]
        modes, hq, kl, sec = (mean_se([r[k] for r in runs]) for k in ("modes", "hq_fraction", "reverse_kl", "seconds"))
        ok = sum(r["modes"] == r["num_modes"] and r["hq_fraction"] > 0.97 and r["reverse_kl"] < 0.02 for r in runs)
        first = runs[0]
        summary.append(
            {
                "loss": loss,
                "d_steps": first["d_steps"],
                "regularizers": first["regularizers"],
                "optimizer": f"{first['optimizer']} {first['lr']:g}",
                "steps": args.steps,
                "seeds": len(runs),
                "modes": modes,
                "hq_percent": [100 * v for v in hq],
                "reverse_kl": kl,
                "seconds": sec,
                "seeds_ok": ok,
                "all_finite": all(r["finite"] for r in runs),
            }
        )
        print(
            f"{loss:22s} {first['d_steps']:2d} {first['regularizers']:16s} {first['optimizer'] + ' ' + format(first['lr'], 'g'):>16s} "
            f"{modes[0]:5.1f} ± {modes[1]:4.1f} {100 * hq[0]:5.1f} ± {100 * hq[1]:4.1f} {kl[0]:6.3f} ± {kl[1]:5.3f} "
            f"{sec[0]:6.1f} {ok:>2d}/{len(runs)}"
        )

    with open(OUT / "losses_grid25.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (OUT / "losses_grid25.json").write_text(json.dumps({"steps": args.steps, "overrides": args.set, "summary": summary}, indent=2))
    means = cli.build_data(config(["dataset=grid25", "dataset.source.n=1"])).mixture.means
    cols = min(5, len(args.losses))
    rows_n = math.ceil(len(args.losses) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(2.6 * cols, 2.6 * rows_n), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, loss in zip(axes.flat, args.losses):
        pts = samples[loss]
        ax.set_axis_on()
        ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.4)
        ax.scatter(means[:, 0], means[:, 1], s=8, c="red", marker="x")
        ax.set_title(loss, fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_xlim(-5.5, 5.5), ax.set_ylim(-5.5, 5.5)
    fig.tight_layout()
    fig.savefig(OUT / "losses_grid25.png", dpi=120)
    print(f"wrote {OUT}/losses_grid25.csv, losses_grid25.json, losses_grid25.png")


if __name__ == "__main__":
    main()
