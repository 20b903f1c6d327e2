"""The ``gantrain`` command: compose the config, check it, build data, model and optimizers, train.

``gantrain model=dcgan loss=nonsaturating dataset=digits trainer.steps=500`` starts a run in a new
directory under ``outputs/``; ``gantrain resume=<run dir>`` continues one where it stopped.
"""

from __future__ import annotations

import logging
import os
import random
import re
import signal
import sys
import time
from pathlib import Path
from typing import Sequence

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gantrain import checkpoint
from gantrain.data import BatchStream, DataBundle, take
from gantrain.errors import ConfigError
from gantrain.families.base import Family
from gantrain.trainer import NAN_POLICIES, Interrupted, NonFiniteLoss, Trainer

log = logging.getLogger("gantrain")

GROUPS = ("model", "loss", "dataset", "optimizer", "regularizer")
# optimizer keys that set one phase's learning rate in place of optimizer.lr
PHASE_LR = {"generator": "lr_g", "discriminator": "lr_d"}


def config_dir() -> Path:
    """configs/ inside the installed package (wheel), else at the top of the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parent / "configs"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError("gantrain's configs/ folder is missing from this installation")


def _fresh_dir(base: str) -> str:
    """``base``, or ``base-1``, ``base-2`` … if it exists: a new run never lands in an old run's folder."""
    path, n = Path(base), 0
    while path.exists():
        n += 1
        path = Path(f"{base}-{n}")
    return str(path)


OmegaConf.register_new_resolver(
    "gantrain_run_dir",
    lambda resume: str(resume) if resume else _fresh_dir(time.strftime("outputs/%Y-%m-%d/%H-%M-%S")),
    use_cache=True,
    replace=True,
)
OmegaConf.register_new_resolver("gantrain_fresh_dir", _fresh_dir, use_cache=True, replace=True)
# a resumed run keeps its original .hydra/ record untouched
OmegaConf.register_new_resolver("gantrain_output_subdir", lambda resume: None if resume else ".hydra", replace=True)


# ------------------------------------------------------------------------------------------ checks
def check_trainer(cfg: DictConfig) -> None:
    t = cfg.trainer
    for key in ("steps", "d_steps", "batch_size", "log_every", "sample_every", "checkpoint_every", "num_samples"):
        if not isinstance(t[key], int) or t[key] < 1:
            raise ConfigError(f"trainer.{key}={t[key]!r} must be a positive integer")
    if not isinstance(t.eval_every, int) or t.eval_every < 0:
        raise ConfigError(f"trainer.eval_every={t.eval_every!r} must be a non-negative integer (0 = no evaluation)")
    if not 0.0 <= float(t.ema) < 1.0:
        raise ConfigError(f"trainer.ema={t.ema} is an EMA decay: use 0 (off) or a value in (0, 1) such as 0.999")
    if not 0.0 <= float(t.lr_decay_start) <= 1.0:
        raise ConfigError(f"trainer.lr_decay_start={t.lr_decay_start} is a fraction of trainer.steps: use a value in [0, 1] (1 = no decay)")
    if not float(t.lr_decay_final) >= 0.0:
        raise ConfigError(f"trainer.lr_decay_final={t.lr_decay_final} is a learning-rate factor: use 0 or more")
    if not float(t.grad_clip) >= 0.0:
        raise ConfigError(f"trainer.grad_clip={t.grad_clip} is a maximum gradient norm: use 0 (off) or more")
    if t.nan_policy not in NAN_POLICIES:
        raise ConfigError(f"trainer.nan_policy={t.nan_policy!r}: use stop (end the run) or skip (skip the update)")
    if t.amp_dtype not in ("bfloat16", "float16"):
        raise ConfigError(f"trainer.amp_dtype={t.amp_dtype!r}: use bfloat16 or float16")
    if not isinstance(t.num_workers, int) or t.num_workers < 0:
        raise ConfigError(f"trainer.num_workers={t.num_workers!r} must be 0 (load in the main process) or more")
    if cfg.dataset.kind == "image":
        for key in ("channels", "image_size"):
            value = cfg.dataset[key]
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"dataset.{key}={value!r} must be a positive integer")
    for key in ("lr", "lr_g", "lr_d"):
        value = cfg.optimizer.get(key)
        if value is not None and not float(value) > 0:
            raise ConfigError(f"optimizer.{key}={value} must be a positive learning rate")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name} but no CUDA GPU is visible; use trainer.device=auto or cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _flatten(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def resume_config(cfg: DictConfig, overrides: Sequence[str]) -> tuple[DictConfig, dict]:
    """The saved run's config with the command line's ``key=value`` overrides applied, and its checkpoint.

    A value that would change is refused unless ``override_resume=true``; a config group cannot change.
    """
    run = Path(cfg.resume)
    path = run / "checkpoints" / "last.pt"
    if not path.is_file():
        if (run / ".hydra" / "config.yaml").is_file():
            raise ConfigError(f"run {cfg.resume!r} stopped before its first checkpoint: start it again as a new run")
        raise ConfigError(
            f"resume={cfg.resume!r} is not a gantrain run directory (no checkpoints/last.pt in it); "
            f"pass the folder a run was written to, e.g. outputs/DATE/TIME"
        )
    state = checkpoint.load(path, required=("family", "step", "networks", "optimizers", "config"))
    saved = OmegaConf.create(state["config"])
    before = _flatten(OmegaConf.to_container(saved))
    for o in OverridesParser.create().parse_overrides(list(overrides)):
        key = o.key_or_group
        if key in ("resume", "override_resume"):
            continue
        if key in GROUPS:
            raise ConfigError(f"resume cannot switch {key}={o.value()}: start a new run for another {key}")
        if OmegaConf.select(saved, key, default="<missing>") == "<missing>":
            raise ConfigError(f"{key} is not a setting of the run being resumed")
        OmegaConf.update(saved, key, o.value(), merge=False)
    after = _flatten(OmegaConf.to_container(saved))
    changes = [f"{k}: {before.get(k)} -> {after.get(k)}" for k in sorted(after) if before.get(k) != after.get(k)]
    if changes and not cfg.override_resume:
        raise ConfigError(f"resuming would change {'; '.join(changes)}; add override_resume=true to accept")
    for change in changes:
        log.warning("resume changes %s", change)
    saved.resume, saved.override_resume = cfg.resume, cfg.override_resume
    return saved, state


# ------------------------------------------------------------------------------------------ building
def _instantiate(node, context: str, hint: str = "", **kwargs):
    """``instantiate(node, **kwargs)``; a constructor's ConfigError passes through Hydra's wrapping unchanged,
    and its ValueError becomes one ConfigError naming ``context``, the config node and ``hint``."""
    try:
        return instantiate(node, **kwargs)
    except Exception as err:  # Hydra wraps constructor errors; report the original one
        cause = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, ConfigError):
            raise cause from None
        if isinstance(cause, ValueError):
            keys = re.findall(r"full_key: (\S+)", str(err))  # the config node whose constructor refused
            where = f" ({keys[-1]})" if keys and "." in keys[-1] else ""
            raise ConfigError(f"{context}{where}: {cause}{hint}") from None
        raise


def build_data(cfg: DictConfig) -> DataBundle:
    """Instantiate ``dataset.source`` and fill what only the data can tell (number of classes)."""
    bundle: DataBundle = _instantiate(cfg.dataset.source, f"dataset={cfg.dataset.name}")
    spec = bundle.spec
    if cfg.dataset.get("num_classes") is None:
        cfg.dataset.num_classes = spec.num_classes
    expected = (cfg.dataset.kind, tuple(cfg.dataset.shape), cfg.dataset.num_classes)
    if expected != (spec.kind, spec.shape, spec.num_classes):
        raise ConfigError(
            f"dataset {cfg.dataset.name} gives {spec.kind} of shape {spec.shape} with {spec.num_classes} classes, "
            f"but its config says {expected[0]} of shape {expected[1]} with {expected[2]} classes"
        )
    return bundle


def build_family(cfg: DictConfig) -> Family:
    """Instantiate ``model`` (a Family with its networks, loss and regularizers); a ValueError raised by a
    network or family becomes one sentence naming the combination."""
    return _instantiate(cfg.model, f"model={cfg.model.name} with dataset={cfg.dataset.name}", _convert_="partial")


def build_optimizers(cfg: DictConfig, family: Family, d_steps: int) -> dict[str, torch.optim.Optimizer]:
    settings = OmegaConf.to_container(cfg.optimizer, resolve=True)
    phase_lrs = {phase: settings.pop(key, None) for phase, key in PHASE_LR.items()}
    if isinstance(settings.get("betas"), list):  # optimizer.betas=[0,0.99] from the command line gives an int 0
        settings["betas"] = tuple(float(beta) for beta in settings["betas"])
    return {
        phase: _instantiate(settings, f"optimizer={settings['_target_']}", "; fix the optimizer.* setting",
                            params=list(family.parameters_of(phase)), lr=phase_lrs.get(phase) or settings["lr"])
        for phase, _ in family.phases(d_steps)
    }


def train(cfg: DictConfig, run_dir: Path, overrides: Sequence[str] = ()) -> dict[str, float]:
    """Train one run in ``run_dir`` (a new run, or ``cfg.resume``'s run continued in place)."""
    run_dir = Path(run_dir)
    state = None
    if cfg.resume:
        cfg, state = resume_config(cfg, overrides)
    elif (run_dir / "checkpoints").exists():
        raise ConfigError(f"{run_dir} already holds a run; pass resume={run_dir} to continue it")
    check_trainer(cfg)
    device = pick_device(cfg.trainer.device)
    amp = bool(cfg.trainer.amp)
    if amp and device.type != "cuda":
        log.warning("trainer.amp=true is for CUDA; training in float32 on %s", device)
        amp = False
    seed_everything(cfg.seed)

    bundle = build_data(cfg)
    family = build_family(cfg).to(device)
    if state is not None:  # before the Trainer writes anything into the run dir
        checkpoint.check_compatible(family, state["networks"], str(Path(cfg.resume) / "checkpoints" / "last.pt"))
    optimizers = build_optimizers(cfg, family, cfg.trainer.d_steps)
    try:
        stream = BatchStream(bundle.train, cfg.trainer.batch_size, seed=cfg.seed, num_workers=cfg.trainer.num_workers)
    except ValueError as err:
        raise ConfigError(f"dataset={cfg.dataset.name}: {err}; lower trainer.batch_size") from None
    evaluator, best_metric = None, None
    if cfg.trainer.eval_every > 0:
        from gantrain.metrics.evaluator import best_metric_name, build_evaluator, higher_is_better

        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # training's streams stay
            evaluator = build_evaluator(cfg, bundle, device)  # as seeded, cached classifier or not
        best_metric = best_metric_name(cfg, evaluator)
    trainer = Trainer(
        family,
        stream,
        optimizers,
        run_dir,
        steps=cfg.trainer.steps,
        d_steps=cfg.trainer.d_steps,
        log_every=cfg.trainer.log_every,
        sample_every=cfg.trainer.sample_every,
        checkpoint_every=cfg.trainer.checkpoint_every,
        amp=amp,
        amp_dtype=cfg.trainer.amp_dtype,
        ema=cfg.trainer.ema,
        num_samples=cfg.trainer.num_samples,
        preview_real=take(bundle.heldout, cfg.trainer.num_samples)["image"],
        seed=cfg.seed,
        config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
        eval_every=cfg.trainer.eval_every,
        evaluator=evaluator,
        best_metric=best_metric,
        best_higher=best_metric is not None and higher_is_better(best_metric),
        nan_policy=cfg.trainer.nan_policy,
        lr_decay_start=float(cfg.trainer.lr_decay_start),
        lr_decay_final=float(cfg.trainer.lr_decay_final),
        grad_clip=float(cfg.trainer.grad_clip),
    )
    if state is not None:
        trainer.load_state_dict(state, source=str(Path(cfg.resume) / "checkpoints" / "last.pt"))
        log.info("resumed %s at step %d", run_dir, trainer.step)
    log.info("run dir %s: %s on %s, %d steps, device %s", run_dir, cfg.model.name, cfg.dataset.name, cfg.trainer.steps, device)
    return trainer.fit()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def _hydra_main(cfg: DictConfig) -> None:
    """Exit codes: 0 done; 2 bad input (one line, before training); 1 a NaN/Inf loss stopped the run;
    128 + the signal's number (130 SIGINT, 143 SIGTERM) after a signal stopped it with a checkpoint."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    try:
        train(cfg, run_dir, hc.overrides.task)
    except Interrupted as stop:
        print(f"gantrain: {signal.Signals(stop.signum).name} received: stopped after step {stop.step} with a "
              f"checkpoint; continue with: gantrain resume={run_dir}", file=sys.stderr)
        sys.exit(128 + stop.signum)
    except (ConfigError, NonFiniteLoss) as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        print(f"gantrain: error: {message}", file=sys.stderr)
        sys.exit(2 if isinstance(err, ConfigError) else 1)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
