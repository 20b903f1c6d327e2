"""Resuming a run: its saved config with the command line's overrides checked against it (gantrain resume=RUN)."""

from __future__ import annotations

import logging
from typing import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from gantrain import checkpoint, validate
from gantrain.errors import ConfigError
from gantrain.run_dir import run_folder
from gantrain.settings import TrainerSettings

log = logging.getLogger("gantrain")

GROUPS = ("model", "loss", "dataset", "optimizer", "regularizer")


def _flatten(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def resume_config(cfg: DictConfig, overrides: Sequence[str]) -> tuple[DictConfig, dict]:
    """The saved run's config with the command line's ``key=value`` overrides applied, and its checkpoint.

    Each value is checked against the saved one (``validate.update_checked``); one that would change is then
    refused unless ``override_resume=true``; a config group cannot change.
    """
    run = run_folder(cfg.resume)
    path = run / "checkpoints" / "last.pt"
    if run.is_file():
        raise ConfigError(f"resume={cfg.resume!r} is a file: pass the folder a run was written to (or its checkpoints/last.pt)")
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
    changed = {}
    for o in OverridesParser.create().parse_overrides(list(overrides)):
        if o.key_or_group in GROUPS:
            raise ConfigError(f"resume cannot switch {o.key_or_group}={o.value()}: start a new run for another {o.key_or_group}")
        if o.key_or_group not in ("resume", "override_resume"):
            changed[o.key_or_group] = o.value()
    validate.update_checked(saved, changed, "the run being resumed")
    TrainerSettings.from_config(saved.trainer)  # a bad trainer.* value is named before "would change"
    after = _flatten(OmegaConf.to_container(saved))
    changes = [f"{k}: {before.get(k)} -> {after.get(k)}" for k in sorted(after) if before.get(k) != after.get(k)]
    if changes and not cfg.override_resume:
        raise ConfigError(f"resuming would change {'; '.join(changes)}; add override_resume=true to accept")
    for change in changes:
        log.warning("resume changes %s", change)
    saved.resume, saved.override_resume = str(run), cfg.override_resume
    return saved, state
