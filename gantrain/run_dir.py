"""Where a run's files go: the resolvers configs/train.yaml gives Hydra for the run folder, a sweep job's folder
and the record Hydra writes before gantrain runs, and the resume command gantrain prints for a run."""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf


def _fresh_dir(base: str) -> str:
    """``base``, or ``base-1``, ``base-2`` … if it exists: a new run never lands in an old run's folder."""
    path, n = Path(base), 0
    while path.exists():
        n += 1
        path = Path(f"{base}-{n}")
    return str(path)


def holds_run(folder) -> bool:
    """A run has trained in ``folder`` (it has ``checkpoints/``): a new run there is refused."""
    return (Path(folder) / "checkpoints").exists()


def run_folder(resume) -> Path:
    """The run folder that ``resume=`` names: the folder itself, or the run of its ``checkpoints/last.pt`` file."""
    path = Path(str(resume))
    if path.name == "last.pt" and path.parent.name == "checkpoints" and path.is_file():
        return path.parent.parent
    return path


def _resumable(resume) -> bool:
    return (run_folder(resume) / "checkpoints" / "last.pt").is_file()


# the new run's folder, chosen once by rank 0 of a torchrun group and given to every rank (gantrain.cli.main)
SHARED_RUN_DIR = "GANTRAIN_SHARED_RUN_DIR"


def new_run_dir() -> str:
    return _fresh_dir(time.strftime("outputs/%Y-%m-%d/%H-%M-%S"))


def _run_dir(resume) -> str:
    """``hydra.run.dir``: a new dated folder (under torchrun the one rank 0 chose), or the resumed run's. A
    ``resume=`` that names no run gets the working directory, which exists: Hydra creates nothing for the run that
    ``resume_config`` then refuses."""
    if not resume:
        return os.environ.get(SHARED_RUN_DIR) or new_run_dir()
    return str(run_folder(resume)) if _resumable(resume) else os.getcwd()


def _refused_for_its_folder(resume, output_dir: str) -> bool:
    """A new run in a folder that holds a run, or a ``resume=`` that names no run: ``train`` will refuse it."""
    return not _resumable(resume) if resume else holds_run(output_dir)


def _swept_keys(sweep_dir) -> set[str]:
    """The keys a sweep varies: swept on the command line (``loss=minimax,hinge``: this process's, or the one the
    sweep saved in ``multirun.yaml``, which is what a launcher's worker process has) or in
    ``hydra.sweeper.params`` of the config or an experiment file."""
    lines = list(sys.argv[1:])
    saved = Path(str(sweep_dir)) / "multirun.yaml"
    if saved.is_file():  # a joblib or submitit worker: its own argv is the launcher's
        lines += [str(line) for line in OmegaConf.select(OmegaConf.load(saved), "hydra.overrides.task") or []]
    if HydraConfig.initialized():
        params = OmegaConf.select(HydraConfig.get(), "sweeper.params") or {}
        lines += [f"{key}={value}" for key, value in params.items()]
    parser, swept = OverridesParser.create(), set()
    for line in lines:
        try:
            if parser.parse_override(line).is_sweep_override():
                swept.add(line.split("=", 1)[0])
        except HydraException:  # -m, --config-name …
            continue
    return swept


def _job_subdir(num, task, sweep_dir) -> str:
    """``hydra.sweep.subdir``: the job number and the values the sweep varies (``1_minimax_0.0001``), short, flat
    (``/`` and other odd characters become ``-``) and plain enough to paste after ``resume=``."""
    swept = _swept_keys(sweep_dir)
    return job_name(num, [item.split("=", 1)[1] for item in task if item.split("=", 1)[0] in swept])


def job_name(num, values) -> str:
    """A sweep job's folder name: its number and values, each at most 40 characters of ``A-Za-z0-9_.-``."""
    return "_".join([str(num), *(re.sub(r"[^A-Za-z0-9_.-]+", "-", str(v)).strip("-")[:40] for v in values)])[:120]


def resume_command(run_dir) -> str:
    """``gantrain resume=<run_dir>`` as a shell line that works when pasted: the path quoted for Hydra's
    grammar where it needs it (``=``, ``,``, spaces …), then for the shell."""
    value = str(run_dir)
    arg = f"resume={value}"
    try:
        plain = OverridesParser.create().parse_override(arg).value() == value
    except HydraException:
        plain = False
    if not plain:
        # in a quoted value Hydra escapes a quote, and the backslashes before a quote or the closing quote
        quoted = re.sub(r'(\\*)("|$)', lambda m: m.group(1) * 2 + ("\\" + m.group(2) if m.group(2) else ""), value)
        arg = f'resume="{quoted}"'
    return f"gantrain {shlex.quote(arg)}"


OmegaConf.register_new_resolver("gantrain_run_dir", _run_dir, use_cache=True, replace=True)
OmegaConf.register_new_resolver("gantrain_fresh_dir", _fresh_dir, use_cache=True, replace=True)
OmegaConf.register_new_resolver("gantrain_job_subdir", _job_subdir, replace=True)


def _other_rank() -> bool:
    """A process of a torchrun group other than rank 0, which writes nothing into the run's folder."""
    return os.environ.get("RANK", "0") != "0"


# Hydra writes .hydra/ and opens the log before gantrain runs: a resumed run keeps its original record, and a run
# that will be refused for its folder (or a rank other than 0) writes nothing there
OmegaConf.register_new_resolver(
    "gantrain_output_subdir", lambda resume, out: None if resume or holds_run(out) or _other_rank() else ".hydra", replace=True
)
OmegaConf.register_new_resolver(
    "gantrain_log_file",
    lambda resume, out: os.devnull if _refused_for_its_folder(resume, out) or _other_rank() else str(Path(out) / "gantrain.log"),
    replace=True,
)
