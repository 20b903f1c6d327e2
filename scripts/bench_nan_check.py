"""Cost of the NaN/Inf guard in the loop: steps/s of the default run (DCGAN on digits) with the guard off,
with ``trainer.nan_policy=stop`` (the default: ``isfinite(loss)`` queued on the device, read at log and
checkpoint steps) and with ``skip`` (read after every update: one device sync each).

"off" is the same loop with ``NanGuard.admit`` always admitting and ``NanGuard.check`` doing nothing, i.e.
the loop before the guard existed. Runs alternate between variants; the table reports medians over repeats,
and the per-call cost of the guard itself (µs per update), which does not depend on the machine's load.

    python scripts/bench_nan_check.py [--steps 150] [--repeats 3] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

import gantrain.cli as cli
from gantrain.loop.guards import NanGuard

OUT = Path(__file__).resolve().parent / "results"
VARIANTS = ("off", "stop", "skip")


def run(variant: str, steps: int, device: str) -> float:
    overrides = [
        f"trainer.steps={steps}",
        "trainer.eval_every=0",
        f"trainer.device={device}",
        f"trainer.nan_policy={'skip' if variant == 'skip' else 'stop'}",
    ]
    with initialize_config_dir(config_dir=str(cli.config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    admit, check = NanGuard.admit, NanGuard.check
    if variant == "off":
        NanGuard.admit, NanGuard.check = (lambda self, step, phase, loss, terms: True), (lambda self, last: None)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tic = time.perf_counter()
            cli.train(cfg, Path(tmp) / "run")
            return steps / (time.perf_counter() - tic)
    finally:
        NanGuard.admit, NanGuard.check = admit, check


def guard_cost(device: str, calls: int = 20000) -> dict[str, float]:
    """µs per update of the guard alone, on a scalar loss like the loop's."""
    loss, terms = torch.tensor(0.5, device=device), {"loss/D": torch.tensor(0.5, device=device)}
    out = {}
    for policy in ("stop", "skip"):
        guard = NanGuard(policy, Path("run"))
        tic = time.perf_counter()
        for i in range(calls):
            guard.admit(1, "discriminator", loss, terms)
            if policy == "stop" and i % 100 == 99:  # the check at a log step every 50 steps (2 updates each)
                guard.check(None)
        out[policy] = (time.perf_counter() - tic) / calls * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: stable on a busy machine)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    speeds = {v: [] for v in VARIANTS}
    for _ in range(args.repeats):
        for variant in VARIANTS:
            speeds[variant].append(run(variant, args.steps, args.device))
    guard = guard_cost(args.device)
    rows = [
        {"variant": v, "steps_per_s": statistics.median(speeds[v]), "all": speeds[v], "guard_us_per_update": guard.get(v, 0.0)}
        for v in VARIANTS
    ]
    base = rows[0]["steps_per_s"]
    print(f"default run (dcgan, digits, batch 64), {args.steps} steps x {args.repeats}, {args.threads} thread(s), {args.device}")
    print(f"{'variant':8} {'steps/s':>9} {'vs off':>8} {'guard µs/update':>16}")
    for r in rows:
        print(f"{r['variant']:8} {r['steps_per_s']:9.2f} {r['steps_per_s'] / base - 1:+8.1%} {r['guard_us_per_update']:16.1f}")
    OUT.mkdir(exist_ok=True)
    (OUT / "nan_check.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
