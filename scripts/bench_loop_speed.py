"""Speed of the loop (BENCHMARKS.md §3): images/s of DCGAN training through gantrain vs a bare PyTorch loop.

Both train the same networks (same initial weights) with the same Adam optimizers, non-saturating loss,
k = 1, batch 64, on in-memory digits. gantrain's side is ``Trainer.fit`` (logging every 50 steps, one
preview and one checkpoint at the end); the bare side is the textbook loop. Runs alternate, and the table
reports medians over repeats.

    python scripts/bench_loop_speed.py [--steps 200] [--repeats 5] [--sizes 16 32] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

import gantrain.cli as cli
from gantrain.data import BatchStream, take
from gantrain.trainer import Trainer

OUT = Path(__file__).resolve().parent / "results"


def build(size: int, device: str):
    with initialize_config_dir(config_dir=str(cli.config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[f"dataset.image_size={size}", "trainer.batch_size=64", f"trainer.device={device}"])
    cli.seed_everything(0)
    bundle = cli.build_data(cfg)
    family = cli.build_family(cfg).to(device)
    return cfg, bundle, family


def gantrain_images_per_s(size: int, steps: int, device: str) -> float:
    cfg, bundle, family = build(size, device)
    optimizers = cli.build_optimizers(cfg, family, 1)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(
            family,
            BatchStream(bundle.train, 64, seed=0),
            optimizers,
            Path(run_dir),
            steps=steps,
            log_every=50,
            sample_every=steps,
            checkpoint_every=steps,
            num_samples=64,
            heldout=take(bundle.heldout, 64),
        )
        _sync(device)
        tic = time.perf_counter()
        trainer.fit()
        _sync(device)
        return steps * 64 / (time.perf_counter() - tic)


def bare_images_per_s(size: int, steps: int, device: str) -> float:
    cfg, bundle, family = build(size, device)
    G, D = copy.deepcopy(family.networks["generator"]), copy.deepcopy(family.networks["discriminator"])
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = bundle.train.tensors()["image"]
    n = len(data) // 64 * 64
    perm = torch.randperm(len(data))
    _sync(device)
    tic = time.perf_counter()
    for step in range(steps):
        b = step % (n // 64)
        if b == 0:
            perm = torch.randperm(len(data))
        real = data[perm[b * 64 : (b + 1) * 64]].to(device)
        with torch.no_grad():
            fake = G(torch.randn(64, 100, device=device))
        d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = F.softplus(-D(G(torch.randn(64, 100, device=device)))).mean()
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    _sync(device)
    return steps * 64 / (time.perf_counter() - tic)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    rows = []
    for size in args.sizes:
        ours, bare = [], []
        for _ in range(args.repeats):
            bare.append(bare_images_per_s(size, args.steps, args.device))
            ours.append(gantrain_images_per_s(size, args.steps, args.device))
        rows.append(
            {
                "size": size,
                "device": args.device,
                "torch_threads": torch.get_num_threads(),
                "bare_images_per_s": statistics.median(bare),
                "gantrain_images_per_s": statistics.median(ours),
                "ratio": statistics.median(o / b for o, b in zip(ours, bare)),
            }
        )
    print(f"| size | device | bare loop (img/s) | gantrain (img/s) | ratio (median of {args.repeats} paired runs) |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['size']}×{r['size']} | {r['device']} | {r['bare_images_per_s']:.0f} | {r['gantrain_images_per_s']:.0f} | {r['ratio']:.3f} |"
        )
    OUT.mkdir(exist_ok=True)
    (OUT / "loop_speed.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    sys.exit(main())
