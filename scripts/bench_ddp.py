"""Throughput of data-parallel training under torchrun: images/s with 1 and N processes, same global batch.

    python scripts/bench_ddp.py                       # DCGAN (no batch norm) on digits, CPU, 1 and 2 processes
    python scripts/bench_ddp.py --device cuda --procs 1 2 4 8 --batch-size 256 --steps 300

Each run is ``torchrun --nproc_per_node=N -m gantrain ...`` (plain ``python -m gantrain`` for N = 1) with
``--threads`` intra-op threads per process; images/s is the median of the values the run logs
(``speed/images_per_s``, rank 0's wall clock over the global batches, the first log interval left out). Beside it:
the largest parameter difference of the final weights from the 1-process run, which should stay at float
rounding (batch norm is off so the comparison is meaningful). Wall-clock numbers: on a loaded machine they
measure the load too.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from gantrain import checkpoint  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(nproc: int, overrides: list[str], run_dir: Path, threads: int) -> None:
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={free_port()}"]
    command = [*(launcher if nproc > 1 else [sys.executable]), "-m", "gantrain", *overrides, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(command, cwd=run_dir.parent, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench_ddp: {' '.join(command)} failed:\n{done.stderr[-2000:]}")


def images_per_s(run_dir: Path) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    values = [e.value for e in events.Scalars("speed/images_per_s")][1:]
    return statistics.median(values)


def max_difference(a: Path, b: Path) -> float:
    x, y = (checkpoint.load(p / "checkpoints" / "last.pt")["networks"] for p in (a, b))
    return max((x[k].double().cpu() - y[k].double().cpu()).abs().max().item() for k in x if x[k].is_floating_point())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per process")
    parser.add_argument("overrides", nargs="*", help="more gantrain overrides")
    args = parser.parse_args()
    overrides = [f"model={args.model}", f"dataset={args.dataset}", f"trainer.device={args.device}"]
    overrides += [f"trainer.batch_size={args.batch_size}", f"trainer.steps={args.steps}", f"trainer.log_every={max(args.steps // 10, 1)}"]
    overrides += ["trainer.sample_every=1000000", "trainer.checkpoint_every=1000000", "trainer.eval_every=0"]
    if args.model in ("dcgan", "acgan"):
        overrides += ["model.generator.norm=none", "model.discriminator.norm=none"]
    elif args.model == "mlp":
        overrides += ["model.generator.batch_norm=false"]
    overrides += args.overrides
    with tempfile.TemporaryDirectory(prefix="bench_ddp_") as tmp:
        runs = {n: Path(tmp) / f"procs{n}" for n in args.procs}
        print(
            f"{args.model} on {args.dataset}, {args.device}, global batch {args.batch_size}, {args.steps} steps, {args.threads} thread(s)/process"
        )
        print(f"{'processes':>9} | {'images/s':>9} | {'speed-up':>8} | max |Δ param| vs {args.procs[0]} process(es)")
        base = None
        for n, run_dir in runs.items():
            train(n, overrides, run_dir, args.threads)
            speed = images_per_s(run_dir)
            base = base or speed
            diff = max_difference(runs[args.procs[0]], run_dir)
            print(f"{n:>9} | {speed:>9.0f} | {speed / base:>7.2f}x | {diff:.2e}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
