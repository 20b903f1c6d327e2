"""The ``gantrain-eval`` command: every metric of a trained checkpoint, written to ``metrics.json``.

    gantrain-eval ckpt=outputs/2026-01-01/12-00-00                 the run's checkpoints/last.pt
    gantrain-eval ckpt=RUN/checkpoints/best.pt eval.num_samples=5000 eval.features=inception out=fid.json

The run's saved config says how to rebuild data and model; ``key=value`` overrides change it (``eval.*``,
``trainer.device``, ``dataset.root`` …). Samples come from the EMA generator when the run kept one.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from torch.optim.swa_utils import AveragedModel

from gantrain import checkpoint, validate
from gantrain.cli import build_data, build_family, config_dir, pick_device
from gantrain.errors import ConfigError
from gantrain.metrics.evaluator import build_evaluator
from gantrain.metrics.extractors import NO_METRICS_HINT
from gantrain.metrics.features import cache_dir

log = logging.getLogger("gantrain.evaluate")


def checkpoint_path(ckpt: str) -> Path:
    """A checkpoint file, or a run directory's ``checkpoints/last.pt``."""
    path = Path(ckpt)
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
        if not path.is_file():
            raise ConfigError(f"ckpt={ckpt!r} is a directory without checkpoints/last.pt: pass a run directory or a .pt file")
    return path


def run_config(state: dict, overrides: dict) -> DictConfig:
    """The checkpoint's config, its ``eval`` section completed from today's defaults, with ``overrides``, each
    checked against the value it replaces (``validate.update_checked``)."""
    cfg = OmegaConf.create(state["config"])
    defaults = OmegaConf.load(config_dir() / "train.yaml").eval
    cfg.eval = OmegaConf.merge(defaults, cfg.get("eval") or {})
    return validate.update_checked(cfg, overrides, "this run's config")


def sampling_network(family, state: dict) -> tuple[torch.nn.Module, str]:
    """The checkpoint's EMA copy of the sampling network when it has one, else the network itself."""
    network = family.networks[family.sample_network]
    if state.get("ema") is None:
        return network, family.sample_network
    ema = AveragedModel(network, use_buffers=True)
    ema.load_state_dict(state["ema"])
    return ema.module, f"{family.sample_network} (EMA)"


def run_folder(path: Path) -> Path:
    """The run directory of a checkpoint file (its ``checkpoints/`` folder's parent, else its own folder)."""
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


@dataclass
class LoadedRun:
    """A checkpoint rebuilt: its file, saved ``state``, config (with overrides), family with the saved weights,
    and the ``network`` to sample from (the EMA copy when kept, in eval mode), named by ``which``."""

    path: Path
    state: dict
    cfg: DictConfig
    family: torch.nn.Module
    network: torch.nn.Module
    which: str


def load_run(ckpt: str, overrides: Optional[dict] = None) -> LoadedRun:
    """Rebuild the family of ``ckpt`` (a run directory or a checkpoint file) on the configured device."""
    path = checkpoint_path(ckpt)
    state = checkpoint.load(path, required=("config", "networks"))
    cfg = run_config(state, overrides or {})
    family = build_family(cfg).to(pick_device(cfg.trainer.device))
    checkpoint.restore(family, state["networks"], str(path))
    network, which = sampling_network(family, state)
    return LoadedRun(path, state, cfg, family, network.eval(), which)


def evaluate_checkpoint(ckpt: str, overrides: Optional[dict] = None, out: Optional[str] = None) -> dict:
    """Compute every metric of ``ckpt`` (a run directory or a checkpoint file); write and return the record."""
    tic = time.perf_counter()
    run_dir = run_folder(checkpoint_path(ckpt))
    out_path = Path(out) if out else run_dir / "metrics.json"
    validate.check_writable("out", out_path.parent)  # before any work: the record must have somewhere to go
    run = load_run(ckpt, overrides)
    path, state, cfg, family, network, which = run.path, run.state, run.cfg, run.family, run.network, run.which
    validate.check_writable("eval.cache_dir", cache_dir(cfg.eval.get("cache_dir")))
    bundle = build_data(cfg)
    evaluator = build_evaluator(cfg, bundle, family.device)
    if not evaluator.metric_names(family):
        raise ConfigError(f"no metric applies to this run: dataset={cfg.dataset.name} has no class labels; {NO_METRICS_HINT}")
    samples = evaluator.sample(family, network)
    metrics = evaluator.evaluate(samples)
    metrics.update(evaluator.memorization(samples, run_dir / "eval"))
    record = {
        "checkpoint": str(path),
        "step": int(state.get("step", 0)),
        "network": which,
        "model": cfg.model.name,
        "dataset": cfg.dataset.name,
        "features": evaluator.extractor.name if evaluator.extractor is not None else None,
        "num_samples": evaluator.num_samples,
        "metrics": metrics,
        "seconds": round(time.perf_counter() - tic, 2),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(record, indent=2) + "\n")
    record["path"] = str(out_path)
    return record


def split_arguments(argv: Sequence[str], own: Sequence[str]) -> tuple[dict, dict]:
    """``key=value`` arguments in Hydra's syntax, split into the command's ``own`` keys and the rest (config
    overrides, or a family's options); text Hydra cannot parse is one ConfigError."""
    try:
        parsed = OverridesParser.create().parse_overrides(list(argv))
    except Exception as err:
        raise ConfigError(f"cannot parse the arguments: {str(err).splitlines()[0]}") from None
    mine, rest = {}, {}
    for o in parsed:
        (mine if o.key_or_group in own else rest)[o.key_or_group] = o.value()
    return mine, rest


def parse_args(argv: Sequence[str]) -> tuple[str, dict, Optional[str]]:
    """``ckpt=…`` (required), ``out=…`` and config overrides, in Hydra's ``key=value`` syntax."""
    mine, overrides = split_arguments(argv, ("ckpt", "out"))
    if "ckpt" not in mine:
        raise ConfigError("usage: gantrain-eval ckpt=<run dir or checkpoint file> [out=metrics.json] [eval.key=value …]")
    out = mine.get("out")
    return str(mine["ckpt"]), overrides, None if out is None else str(out)


def run_command(name: str, argv: Optional[Sequence[str]], usage: str, work: Callable[[list[str]], None], interrupted: str) -> None:
    """The frame of the checkpoint commands (gantrain-eval, -translate, -generate, -explore): ``--help`` prints
    ``usage``; ``work(argv)`` runs, and what stops it is one line on stderr — a ConfigError (exit 2), a file that
    could not be written (exit 1), Ctrl-C (exit 130, with ``interrupted``: what was left)."""
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    if {"-h", "--help"} & set(argv):
        print(usage)
        return
    try:
        work(argv)
    except (ConfigError, checkpoint.WriteError) as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        sys.exit(2 if isinstance(err, ConfigError) else 1)
    except KeyboardInterrupt:
        print(f"{name}: SIGINT received: stopped; {interrupted}", file=sys.stderr)
        sys.exit(130)


def _evaluate(argv: list[str]) -> None:
    ckpt, overrides, out = parse_args(argv)
    record = evaluate_checkpoint(ckpt, overrides, out)
    print(f"{record['model']} on {record['dataset']}, step {record['step']}, {record['num_samples']} samples from the {record['network']}")
    width = max(len(k) for k in record["metrics"])
    for k, v in record["metrics"].items():
        print(f"  {k:<{width}}  {v:.6g}")
    print(f"wrote {record['path']} ({record['seconds']} s)")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Exit codes: 0 done (also for ``--help``); 2 bad input; 1 a file could not be written (a full disk); 130 Ctrl-C."""
    usage = f"usage: gantrain-eval ckpt=<run dir or checkpoint file> [out=metrics.json] [key=value …]\n\n{__doc__.strip()}"
    run_command("gantrain-eval", argv, usage, _evaluate, "no metrics written")


if __name__ == "__main__":
    main()
