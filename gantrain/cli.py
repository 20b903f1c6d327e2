"""The ``gantrain`` command: compose the config, check it, build data, model and optimizers, train.

``gantrain model=dcgan loss=nonsaturating dataset=digits trainer.steps=500`` starts a run in a new
directory under ``outputs/``; ``gantrain resume=<run dir>`` continues one where it stopped.
``torchrun --nproc_per_node=N -m gantrain <overrides>`` trains one run on N processes (gantrain/loop/distributed.py).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import re
import signal
import sys
from pathlib import Path
from typing import Callable, Sequence

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gantrain import checkpoint, hparams, validate
from gantrain.data import BatchStream, DataBundle, take
from gantrain.errors import ConfigError
from gantrain.families.base import Family
from gantrain.loop import distributed
from gantrain.resume import resume_config
from gantrain.run_dir import SHARED_RUN_DIR, holds_run, new_run_dir, resume_command
from gantrain.settings import TrainerSettings
from gantrain.trainer import Interrupted, NonFiniteLoss, Trainer

log = logging.getLogger("gantrain")

# short optimizer keys for the learning rate of one GAN phase (e.g. TTUR): optimizer.per_phase.<phase>.lr
PHASE_LR_ALIASES = {"lr_g": "generator", "lr_d": "discriminator"}


def config_dir() -> Path:
    """configs/ inside the installed package (wheel), else at the top of the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parent / "configs"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError("gantrain's configs/ folder is missing from this installation")


# ------------------------------------------------------------------------------------------ checks
def _reference_config(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig | None:
    """The config of the same group choices without the command line's values: what each key holds by default
    (None for a resumed run, whose saved config is its own reference, and without a command line to go by)."""
    if cfg.get("resume") or not overrides:
        return None
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    choices = [o.input_line for o in parsed if (config_dir() / o.key_or_group.split("@")[0]).is_dir() and o.input_line]
    if GlobalHydra.instance().is_initialized():  # inside the app
        return compose("train", overrides=choices)
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=choices)


def _dry_build(cfg: DictConfig) -> Family | None:
    """Make the model on the meta device (no memory, no data): what its constructors refuse from the config alone
    (an image size a model cannot make, a width of 0) is refused before data is built. Other errors of this dry
    run are left to the real build."""
    dry = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    if dry.dataset.get("num_classes") is None:  # counted from the data: any number will do here
        dry.dataset.num_classes = 2
    logging.disable(logging.WARNING)  # what the build logs (R1 swapping a norm, …), the real build says once
    try:
        with torch.device("meta"):
            return build_family(dry)
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - the real build reports it
        return None
    finally:
        logging.disable(logging.NOTSET)


def check_config(cfg: DictConfig, overrides: Sequence[str] = (), run_dir=None) -> TrainerSettings:
    """Every check the composed config allows before data, networks or optimizers exist (gantrain/validate.py);
    the checked trainer settings."""
    validate.check_missing(cfg)
    validate.check_interpolations(cfg, config_dir())
    settings = TrainerSettings.from_config(cfg.trainer)
    groups = [p.name for p in config_dir().iterdir() if p.is_dir()]
    reference = _reference_config(cfg, overrides)
    validate.check_added_keys(cfg, overrides, groups, extra=[f"optimizer.{k}" for k in PHASE_LR_ALIASES], reference=reference)
    validate.check_values(cfg, reference)
    if cfg.dataset.kind == "image":
        for key in ("channels", "image_size"):
            value = cfg.dataset[key]
            if not validate.is_positive_int(value):
                raise ConfigError(f"dataset.{key}={value!r} must be a positive integer")
    per_phase = cfg.optimizer.get("per_phase") or {}
    rates = {
        **{key: cfg.optimizer.get(key) for key in ("lr", *PHASE_LR_ALIASES)},
        **{f"per_phase.{p}.lr": options.get("lr") for p, options in per_phase.items()},
    }
    for key, value in rates.items():
        if value is not None and not (validate.is_number(value) and value > 0):
            raise ConfigError(f"optimizer.{key}={value} must be a positive learning rate")
    validate.check_image_size(cfg)
    pick_device(settings.device)
    if run_dir is not None:
        validate.check_writable("hydra.run.dir", run_dir)
    if settings.eval_every > 0:
        from gantrain.metrics.features import cache_dir

        validate.check_writable("eval.cache_dir", cache_dir(cfg.get("eval", {}).get("cache_dir")))
    validate.check_batch_statistics(_dry_build(cfg), settings.batch_size)
    return settings


def pick_device(name: str) -> torch.device:
    """``trainer.device``: auto, cpu, cuda, cuda:N or mps, refused in one line where this machine has none."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = str(name).partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not (kind == "cuda" and index.isdigit())):
        raise ConfigError(f"trainer.device={name!r} is not a device: use auto, cpu, cuda, cuda:N (a GPU's number) or mps")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name} but no CUDA GPU is visible; use trainer.device=auto or cpu")
    if index and int(index) >= torch.cuda.device_count():
        raise ConfigError(f"trainer.device={name} but this machine has {torch.cuda.device_count()} GPU(s): cuda:0 … cuda:N-1")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.device=mps but no Apple GPU (MPS) is available; use trainer.device=auto or cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------ building
def _instantiate(node, context: str, hint: str = "", **kwargs):
    """``instantiate(node, **kwargs)``; a constructor's ConfigError passes through Hydra's wrapping unchanged,
    and its ValueError or TypeError (a value of the wrong kind, e.g. a fraction where a count belongs) becomes one
    ConfigError naming ``context``, the config node and ``hint``."""
    try:
        return instantiate(node, **kwargs)
    except Exception as err:  # Hydra wraps constructor errors; report the original one
        cause = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, ConfigError):
            raise cause from None
        if isinstance(cause, (ValueError, TypeError)):
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
    """One optimizer per phase over the parameters it updates: ``optimizer.*`` for every phase, with
    ``optimizer.per_phase.<phase>.*`` (and the short ``lr_g``/``lr_d``) overriding it for one."""
    settings = OmegaConf.to_container(cfg.optimizer, resolve=True)
    per_phase = settings.pop("per_phase", None) or {}
    for key, phase in PHASE_LR_ALIASES.items():
        lr = settings.pop(key, None)
        if lr is not None:
            per_phase.setdefault(phase, {}).setdefault("lr", lr)
    phases = family.phases(d_steps)
    names = [p.name for p in phases]
    unknown = sorted(set(per_phase) - set(names))
    if unknown:
        raise ConfigError(f"optimizer settings for a {unknown[0]} phase, but {family.name}'s phases are {', '.join(names)}")
    optimizers = {}
    for phase in phases:
        options = {**settings, **per_phase.get(phase.name, {})}
        if isinstance(options.get("betas"), list):  # optimizer.betas=[0,0.99] from the command line gives an int 0
            options["betas"] = tuple(float(beta) for beta in options["betas"])
        optimizers[phase.name] = _instantiate(
            options, f"optimizer={settings['_target_']}", "; fix the optimizer.* setting", params=list(family.parameters_of(phase))
        )
    return optimizers


def train(
    cfg: DictConfig, run_dir: Path, overrides: Sequence[str] = (), on_evaluate: Callable[[int, float], None] | None = None
) -> dict[str, float]:
    """Train one run in ``run_dir`` (a new run, or ``cfg.resume``'s run continued in place). Returns the final
    logs and metrics, with ``objective``: the final value of ``eval.best_metric`` (when the run evaluates), what
    gantrain-tune and Hydra's sweepers optimize. ``on_evaluate(step, value)`` sees that metric at every evaluation
    (gantrain-tune prunes with it); TensorBoard's HParams tab gets the run's settings and final values."""
    run_dir = Path(run_dir)
    state = None
    if cfg.resume:
        cfg, state = resume_config(cfg, overrides)
    elif holds_run(run_dir):
        raise ConfigError(f"{run_dir} already holds a run; pass resume={run_dir} to continue it")
    settings = check_config(cfg, overrides, run_dir)
    device = pick_device(settings.device)
    if distributed.active():
        device = distributed.checked_device(settings, device)
    if settings.amp and device.type != "cuda":
        log.warning("trainer.amp=true is for CUDA; training in float32 on %s", device)
        settings = dataclasses.replace(settings, amp=False)
    seed_everything(cfg.seed)

    bundle = build_data(cfg)
    family = build_family(cfg).to(device)
    if state is not None:  # before the Trainer writes anything into the run dir
        checkpoint.check_compatible(family, state["networks"], str(Path(cfg.resume) / "checkpoints" / "last.pt"))
        partial = Path(cfg.resume) / "checkpoints" / "last.pt.tmp"
        if partial.exists() and distributed.is_main():  # a write the run was killed in (kill -9, power loss): never a whole checkpoint
            partial.unlink()
            log.warning("removed %s, a checkpoint whose writing was interrupted; resuming from last.pt", partial)
    if settings.sync_batchnorm and distributed.active():
        family = torch.nn.SyncBatchNorm.convert_sync_batchnorm(family)
    distributed.broadcast_module(family)  # every rank starts from rank 0's weights
    optimizers = build_optimizers(cfg, family, settings.d_steps)
    try:
        shard = {"shard": distributed.rank(), "shards": distributed.world_size()}  # this rank's rows of each batch
        stream = BatchStream(bundle.train, settings.batch_size, seed=cfg.seed, num_workers=settings.num_workers, **shard)
    except ValueError as err:
        raise ConfigError(f"dataset={cfg.dataset.name}: {err}; lower trainer.batch_size") from None
    evaluator, best_metric = None, None
    if settings.eval_every > 0 and distributed.is_main():  # rank 0 evaluates while the others wait
        from gantrain.metrics.evaluator import Observed, best_metric_name, build_evaluator, higher_is_better
        from gantrain.metrics.extractors import NO_METRICS_HINT

        with checkpoint.forked_rng(device):  # training's streams stay as seeded, cached classifier or not
            evaluator = build_evaluator(cfg, bundle, device)
            measured = evaluator.metric_names(family)
        if measured:
            best_metric = best_metric_name(cfg, evaluator, family)
            if on_evaluate is not None:
                evaluator = Observed(evaluator, lambda metrics: on_evaluate(trainer.step, metrics.get(best_metric)))
        else:  # an unlabelled folder without Inception weights: train, and say once how to get metrics
            features = cfg.eval.get("features")
            why = (
                "has no class labels and no Inception weights are at hand"
                if features == "auto"
                else f"gives no metric with eval.features={features}"
            )
            log.warning("dataset=%s %s: training without metrics; %s", cfg.dataset.name, why, NO_METRICS_HINT)
            evaluator = None
    trainer = Trainer(
        family,
        stream,
        optimizers,
        run_dir,
        settings=settings,
        heldout=take(bundle.heldout, settings.num_samples),
        evaluator=evaluator,
        best_metric=best_metric,
        best_higher=best_metric is not None and higher_is_better(best_metric),
        seed=cfg.seed,
        config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
    )
    if state is not None:
        trainer.load_state_dict(state, source=str(Path(cfg.resume) / "checkpoints" / "last.pt"))
        log.info("resumed %s at step %d", run_dir, trainer.step)
    log.info("run dir %s: %s on %s, %d steps, device %s", run_dir, cfg.model.name, cfg.dataset.name, cfg.trainer.steps, device)
    results = trainer.fit()
    if distributed.is_main():  # the one writer of the run
        hparams.log(trainer.writer, hparams.of_run(cfg, run_dir, overrides), results, trainer.step)
    if best_metric in results:
        results["objective"] = results[best_metric]
    return results


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    """Returns the run's objective (``train``) for Hydra's sweepers. Exit codes: 0 done; 2 bad input (one line, before training); 1 a NaN/Inf loss stopped the run, or a
    checkpoint could not be written (a full disk: the previous checkpoint is kept); 128 + the signal's number
    (130 SIGINT, 143 SIGTERM) after a signal stopped it (with a checkpoint, unless it came before training)."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    last = run_dir / "checkpoints" / "last.pt"
    main_rank = distributed.is_main()
    if not main_rank:  # rank 0 reports; the others only warn
        logging.getLogger().setLevel(logging.WARNING)
    try:
        return train(cfg, run_dir, hc.overrides.task).get("objective")
    except distributed.LostRank as err:
        then = f"continue from {last} (intact) with: torchrun ... -m gantrain resume={run_dir}" if last.is_file() else "no checkpoint yet"
        print(f"gantrain: error: {err}; the run stopped; {then}", file=sys.stderr)
        sys.exit(1)
    except Interrupted as stop:
        if not main_rank:
            sys.exit(128 + stop.signum)
        print(
            f"gantrain: {signal.Signals(stop.signum).name} received: stopped after step {stop.step} with a "
            f"checkpoint; continue with: {resume_command(run_dir)}",
            file=sys.stderr,
        )
        sys.exit(128 + stop.signum)
    except KeyboardInterrupt:  # Ctrl-C before the loop (data, the feature classifier) or a second one in it
        then = f"continue from {last} with: {resume_command(run_dir)}" if last.is_file() else "no checkpoint yet: run the command again"
        print(f"gantrain: SIGINT received: stopped at once; {then}", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    except (ConfigError, NonFiniteLoss, checkpoint.WriteError) as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if not main_rank:  # every rank meets the same error: rank 0 says it
            sys.exit(2 if isinstance(err, ConfigError) else 1)
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        if isinstance(err, checkpoint.WriteError):
            message += f", then continue with: {resume_command(run_dir)}" if last.is_file() else ", then run the command again"
        print(f"gantrain: error: {message}", file=sys.stderr)
        sys.exit(2 if isinstance(err, ConfigError) else 1)


def main() -> None:
    """``gantrain``: ``--help`` (gantrain/help.py), else the command line checked (``validate.check_command_line``), then
    the Hydra app. Under torchrun the processes first join their group, and rank 0 chooses a new run's folder for
    all of them."""
    if {"-h", "--help"} & set(sys.argv[1:]):
        from gantrain.help import print_help

        print_help(config_dir(), [arg for arg in sys.argv[1:] if "=" in arg and not arg.startswith("-")])
        return
    if os.environ.get("HYDRA_FULL_ERROR") != "1":
        try:
            validate.check_command_line(sys.argv[1:])
        except ConfigError as err:
            if distributed.is_main():
                print(f"gantrain: error: {err}", file=sys.stderr)
            sys.exit(2)
    if distributed.launched():
        distributed.start()
        os.environ[SHARED_RUN_DIR] = distributed.from_main(new_run_dir() if distributed.is_main() else None)
    try:
        _hydra_main()
    finally:
        distributed.stop()


if __name__ == "__main__":  # through the module's own name: launchers (joblib) pickle the task function by it
    from gantrain.cli import main as _main

    _main()
