"""A run's hyperparameters and final values for TensorBoard's HParams tab, read from the record Hydra keeps
(``.hydra/overrides.yaml``: the command line's values; ``.hydra/hydra.yaml``: the config group choices).

The HParams summaries go into the run's own event file, next to its scalars, so TensorBoard shows each run once:
one row per run with its overrides, its model/loss/dataset/optimizer/regularizer and its final ``loss/*``
terms and evaluation metrics."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard.summary import hparams as hparams_summaries

# values logged during training that are not a result of the run: its speed, rates, gradient norms
NOT_RESULTS = ("speed/", "lr/", "grad_norm/", "nonfinite/")
GROUPS = ("model", "loss", "dataset", "optimizer", "regularizer", "experiment")


def job_record(run_dir) -> tuple[dict[str, str], list[str]]:
    """The config group choices and the override lines Hydra saved in ``run_dir/.hydra`` (empty if none)."""
    record = Path(run_dir) / ".hydra"
    choices, overrides = {}, []
    if (record / "hydra.yaml").is_file():
        saved = OmegaConf.load(record / "hydra.yaml")
        choices = {k: str(v) for k, v in (OmegaConf.select(saved, "hydra.runtime.choices") or {}).items() if k in GROUPS and v is not None}
    if (record / "overrides.yaml").is_file():
        overrides = [str(line) for line in OmegaConf.load(record / "overrides.yaml")]
    return choices, overrides


def _plain(value):
    """A value TensorBoard's HParams can show: a number, a bool or a string (lists, nulls as text)."""
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def of_run(cfg: DictConfig, run_dir, overrides: Sequence[str] = ()) -> dict:
    """The run's hyperparameters: its config group choices and every overridden key with the value it resolved
    to (``optimizer.lr=1e-4`` gives 0.0001). The saved record wins over ``overrides``: a resumed run keeps the
    settings it started with."""
    choices, saved = job_record(run_dir)
    found = {"model": cfg.model.get("name"), "dataset": cfg.dataset.get("name"), **choices}
    for line in saved or overrides:
        key, _, text = line.lstrip("+~").partition("=")
        if key.startswith("hydra.") or key in ("resume", "override_resume"):
            continue
        value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False) if key not in GROUPS else None
        found[key] = _plain(value if value is not None and not OmegaConf.is_config(value) else choices.get(key, text))
    if "regularizer" in cfg:  # what was built, not the choice's name (the default, `tuned`, builds R1 or none)
        found["regularizer"] = ",".join(cfg.regularizer) or "none"
    return {k: _plain(v) for k, v in found.items() if v is not None}


def results_of(values: dict[str, float]) -> dict[str, float]:
    """The final values that are results of a run: its loss terms and evaluation metrics (finite numbers)."""
    return {k: float(v) for k, v in values.items() if not k.startswith(NOT_RESULTS) and k != "objective" and math.isfinite(float(v))}


def log(writer, params: dict, values: dict[str, float], step: int) -> None:
    """Write the HParams experiment, session start and end records into ``writer``'s event file; the metrics
    they name are scalars the run logged at its last step."""
    for summary in hparams_summaries(params, results_of(values)):
        writer.file_writer.add_summary(summary, step)
    writer.flush()
