"""``gantrain-tune``: hyperparameter search with Optuna's study API over gantrain's own ``train``.

``gantrain-tune --trials 20 model=mlp dataset=grid25 trainer.eval_every=500 'optimizer.lr=tag(log,interval(1e-5,1e-3))'
'loss=choice(nonsaturating,hinge)'`` samples each trial's values from the search space written in Hydra's sweep
grammar (the one Hydra's Optuna sweeper reads), trains the run in ``<dir>/<trial>_<values>/`` as a sweep job
would be, and minimizes (or maximizes, for a higher-is-better metric) the final ``eval.best_metric``. At every
evaluation the trial reports that metric to Optuna, whose pruner stops runs that fall behind. Trials of one study
may run in several processes or machines at once: give each the same ``--study`` and ``--storage``
(Optuna's distributed optimization). Hydra's own Optuna sweeper plugin pins Optuna below 3, hence this command.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path
from typing import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict

from gantrain import cli
from gantrain.errors import ConfigError
from gantrain.metrics.evaluator import higher_is_better
from gantrain.run_dir import _fresh_dir, job_name
from gantrain.trainer import NonFiniteLoss

log = logging.getLogger("gantrain.tune")
PRUNERS = ("median", "hyperband", "none")
SAMPLERS = ("tpe", "random")


def parse_space(overrides: Sequence[str]) -> tuple[list[str], dict]:
    """The fixed overrides and the search space: {key: Hydra sweep} for each ``choice(...)`` / ``a,b``,
    ``range(start, stop[, step])``, ``interval(low, high)`` (``tag(log, …)`` on a log scale, ``tag(int, …)``
    in integers)."""
    parser, fixed, space = OverridesParser.create(), [], {}
    for line in overrides:
        try:
            override = parser.parse_override(line)
        except HydraException as err:
            raise ConfigError(f"cannot read the override {line!r}: {str(err).splitlines()[-1]}") from None
        if not override.is_sweep_override():
            fixed.append(line)
            continue
        sweep = override.value()
        if not isinstance(sweep, (ChoiceSweep, RangeSweep, IntervalSweep)) or getattr(sweep, "shuffle", False):
            raise ConfigError(f"{line!r}: gantrain-tune searches choice(...), range(...) and interval(...), not shuffled sweeps")
        space[override.key_or_group] = sweep
    if not space:
        raise ConfigError("no search space: sweep at least one value, e.g. 'optimizer.lr=tag(log,interval(1e-5,1e-3))'")
    return fixed, space


def suggest(trial, key: str, sweep):
    """One value of ``sweep`` drawn by the trial (``trial.suggest_*``: Optuna's distributions)."""
    if isinstance(sweep, ChoiceSweep):
        return trial.suggest_categorical(key, list(sweep.list))
    if isinstance(sweep, RangeSweep):  # Hydra's range: the stop value is excluded
        count = math.ceil((sweep.stop - sweep.start) / sweep.step - 1e-9)  # range(0.1, 0.5, 0.1) stops at 0.4
        if count < 1:
            raise ConfigError(f"{key}=range({sweep.start}, {sweep.stop}, {sweep.step}) holds no value")
        high = sweep.start + sweep.step * (count - 1)
        if all(isinstance(v, int) for v in (sweep.start, sweep.step)):
            return trial.suggest_int(key, sweep.start, high, step=sweep.step)
        return trial.suggest_float(key, sweep.start, high, step=sweep.step)
    if "int" in sweep.tags:
        return trial.suggest_int(key, math.ceil(sweep.start), math.floor(sweep.end), log="log" in sweep.tags)
    return trial.suggest_float(key, sweep.start, sweep.end, log="log" in sweep.tags)


def compose_run(overrides: Sequence[str]) -> tuple[DictConfig, DictConfig]:
    """The config ``gantrain <overrides>`` would run, and Hydra's own node (its group choices) apart."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(cli.config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    hydra_node = cfg.hydra
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, hydra_node


def write_record(run_dir: Path, cfg: DictConfig, hydra_node: DictConfig, overrides: Sequence[str]) -> None:
    """``.hydra/config.yaml``, ``hydra.yaml`` (the group choices) and ``overrides.yaml``, as Hydra writes them
    for a sweep job: gantrain-report and the HParams tab read them."""
    record = run_dir / ".hydra"
    record.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, record / "config.yaml")
    OmegaConf.save({"hydra": {"runtime": {"choices": hydra_node.runtime.choices}}}, record / "hydra.yaml")
    OmegaConf.save(OmegaConf.create(list(overrides)), record / "overrides.yaml")


def _pruner(name: str):
    import optuna

    return {"median": optuna.pruners.MedianPruner, "hyperband": optuna.pruners.HyperbandPruner, "none": optuna.pruners.NopPruner}[name]()


def _sampler(name: str, seed):
    import optuna

    return {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}[name](seed=seed)


def objective(fixed: Sequence[str], space: dict, sweep_dir: Path):
    """Optuna's objective: train one trial's run and return its final ``eval.best_metric``; each evaluation
    reports it, and the pruner may stop the run there (``optuna.TrialPruned``)."""
    import optuna

    def run(trial) -> float:
        values = {key: suggest(trial, key, sweep) for key, sweep in space.items()}
        overrides = [*fixed, *(f"{key}={value}" for key, value in values.items())]
        cfg, hydra_node = compose_run(overrides)
        steps = int(cfg.trainer.steps)
        run_dir = sweep_dir / job_name(trial.number, [f"{v:.3g}" if isinstance(v, float) else v for v in values.values()])
        write_record(run_dir, cfg, hydra_node, overrides)
        trial.set_user_attr("run_dir", str(run_dir))

        def report(step: int, value) -> None:
            if value is None or not math.isfinite(value):
                return
            trial.report(value, step)
            if step < steps and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} ({value:.4g})")

        results = cli.train(cfg, run_dir, overrides, on_evaluate=report)
        if "objective" not in results:
            raise ConfigError("the run has no final eval.best_metric: set eval.best_metric to one of its metrics")
        return results["objective"]

    return run


def tune(args: argparse.Namespace) -> object:
    """Check the fixed config, then run ``args.trials`` trials of the study; returns the study."""
    import optuna

    fixed, space = parse_space(args.overrides)
    cfg, _ = compose_run(fixed)
    cli.check_config(cfg, fixed)
    if cfg.trainer.eval_every <= 0:
        raise ConfigError("gantrain-tune optimizes an evaluation metric: set trainer.eval_every to a positive number of steps")
    best = cfg.eval.get("best_metric")
    direction = "maximize" if best is not None and higher_is_better(str(best) if "/" in str(best) else f"{best}/") else "minimize"
    sweep_dir = Path(args.dir) if args.dir else Path(_fresh_dir(time.strftime("outputs/tune/%Y-%m-%d/%H-%M-%S")))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=args.study,
        storage=args.storage,
        direction=direction,
        sampler=_sampler(args.sampler, args.seed),
        pruner=_pruner(args.pruner),
        load_if_exists=True,
    )
    log.info("study %s: %s eval.best_metric over %s; runs in %s", study.study_name, direction, ", ".join(space), sweep_dir)
    study.optimize(objective(fixed, space, sweep_dir), n_trials=args.trials, catch=(NonFiniteLoss, ConfigError))
    return study


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gantrain-tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="trials this process runs (default 20)")
    parser.add_argument("--study", default=None, help="the study's name (needed to share it through --storage)")
    parser.add_argument("--storage", default=None, help="Optuna storage URL, e.g. sqlite:///tune.db (default: in memory)")
    parser.add_argument("--pruner", choices=PRUNERS, default="median", help="stops trials behind the others at an evaluation")
    parser.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    parser.add_argument("--seed", type=int, default=None, help="the sampler's seed")
    parser.add_argument("--dir", default=None, help="where the trials' run folders go (default outputs/tune/DATE/TIME)")
    parser.add_argument("overrides", nargs="*", help="gantrain overrides; swept ones (a,b choice() range() interval()) are the space")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        if args.trials < 1:
            raise ConfigError(f"--trials {args.trials}: run at least one trial")
        study = tune(args)
    except ConfigError as err:
        print(f"gantrain-tune: error: {err}", file=sys.stderr)
        sys.exit(2)
    done = [t for t in study.trials if t.value is not None and t.state.name == "COMPLETE"]
    if not done:
        print("gantrain-tune: no trial completed", file=sys.stderr)
        sys.exit(1)
    print(
        f"best trial {study.best_trial.number}: {study.best_value:.6g} with {study.best_params} in {study.best_trial.user_attrs.get('run_dir')}"
    )


if __name__ == "__main__":
    main()
