"""How long each command of the README's Usage block takes on a CPU (the `# ~N min` comments there).

Each command's composed config is built as ``gantrain`` builds it and trained by the one loop
(``Trainer.train_step``) for ``--probe`` steps after one warm-up step; one evaluation (``eval.num_samples``
samples of the sampling network, scored) is timed as well. The whole run is then estimated as
``trainer.steps`` × the seconds per step + one evaluation every ``trainer.eval_every`` steps and at the end
(previews and checkpoints cost little beside them). Times are CPU seconds of this process (``--clock
process``, the default) with ``--threads`` torch threads: with one thread, what one idle core takes, however
loaded the machine is; ``gantrain`` itself uses torch's default threads (2 on a 2-core CPU), which is faster
by at most that factor.

    python scripts/bench_usage.py [--threads 1] [--probe 20] [--only dcgan ddpm]
"""

from __future__ import annotations

import argparse
import math
import tempfile

import torch
from bench_digits import CLOCKS, compose

import gantrain.cli as cli
from gantrain.data import BatchStream, take
from gantrain.metrics import build_evaluator
from gantrain.trainer import Trainer

# the Usage block's commands that train offline, by a short name
COMMANDS = {
    "dcgan": [],
    "mlp_grid25": ["model=mlp", "dataset=grid25"],
    "acgan": ["model=acgan", "trainer.steps=3000"],
    "cgan_sgd": ["model=cgan", "optimizer=sgd"],
    "stylegan_wgan_gp": ["model=stylegan", "loss=wgan_gp"],
    "ddpm": ["model=ddpm"],
    "pix2pix": ["model=pix2pix", "dataset=edges2digits"],
}


def time_command(overrides: list[str], probe: int, clock: str, tmp: str) -> dict:
    cfg = compose([*overrides, "trainer.device=cpu"])
    settings = cli.check_config(cfg)
    cli.seed_everything(cfg.seed)
    bundle = cli.build_data(cfg)
    family = cli.build_family(cfg)
    optimizers = cli.build_optimizers(cfg, family, settings.d_steps)
    stream = BatchStream(bundle.train, settings.batch_size, seed=cfg.seed)
    evaluator = build_evaluator(cfg, bundle, family.device) if settings.eval_every else None
    trainer = Trainer(family, stream, optimizers, tmp, settings=settings, heldout=take(bundle.heldout, settings.num_samples), seed=cfg.seed)
    trainer.writer.close()
    now = CLOCKS[clock]
    trainer.train_step()  # warm-up: lazy initializations, allocator
    tic = now()
    for _ in range(probe):
        trainer.train_step()
    per_step = (now() - tic) / probe
    evaluation, evaluations = 0.0, 0
    if evaluator is not None:
        tic = now()
        with torch.no_grad():
            evaluator.evaluate(evaluator.sample(family, trainer.sampling_network().eval()))
        evaluation = now() - tic
        evaluations = math.ceil(settings.steps / settings.eval_every)
    return {
        "steps": settings.steps,
        "s_per_step": per_step,
        "eval_s": evaluation,
        "evals": evaluations,
        "total_min": (settings.steps * per_step + evaluations * evaluation) / 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--probe", type=int, default=20, help="timed training steps per command")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="process")
    parser.add_argument("--only", nargs="*", default=None, help="command names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"{args.clock} seconds, {torch.get_num_threads()} thread(s), {args.probe} timed steps per command\n")
    print("| command | steps | s / step | evaluation (s) | evaluations | estimated total (min) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, overrides in COMMANDS.items():
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            r = time_command(overrides, args.probe, args.clock, tmp)
        line = " ".join(["gantrain", *overrides])
        print(f"| `{line}` | {r['steps']} | {r['s_per_step']:.3f} | {r['eval_s']:.1f} | {r['evals']} | {r['total_min']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
