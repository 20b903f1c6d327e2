"""The ``gantrain-explore`` command: a latent-space tool run on a trained checkpoint, writing PNG grids and an
``explore.json`` of what it measured.

    gantrain-explore ckpt=RUN explore=interpolate                 lerp and slerp paths between seeds
    gantrain-explore ckpt=RUN explore=direction explore.attribute=class_7
    gantrain-explore ckpt=RUN explore=decouple explore.attribute=stroke_width explore.other_attribute=brightness
    gantrain-explore ckpt=RUN explore=arithmetic                  thick 7 − thin 7 + thin 1
    gantrain-explore ckpt=RUN explore=project explore.image=digit.png
    gantrain-explore ckpt=RUN explore=map explore.other=RUN2      a linear map into RUN2's latent space
    gantrain-explore ckpt=RUN explore=truncation                  ψ (StyleGAN) or τ against FID, precision, recall
    gantrain-explore ckpt=STYLEGAN_RUN explore=interpolate explore.space=w

``explore=`` chooses a tool of the config group configs/explore/; ``explore.key=value`` changes its settings
(a comma list sweeps: ``explore=direction,decouple explore.attribute=slant,stroke_width`` runs all four);
other ``key=value`` arguments override the run's saved config (``eval.*``, ``trainer.device``). The files go to
``RUN/explore/<tool>`` (a fresh ``<tool>-2`` … when taken) or ``explore.out``. Samples come from the EMA
generator when the run kept one.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from pathlib import Path
from typing import Optional, Sequence

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.types import ChoiceSweep, Sweep
from omegaconf import DictConfig, OmegaConf

from gantrain import validate
from gantrain.cli import build_data, config_dir
from gantrain.errors import ConfigError
from gantrain.evaluate import load_run, run_command, run_folder, split_arguments
from gantrain.explore import edit_tools, space_tools
from gantrain.explore.context import Context
from gantrain.explore.measures import Measures
from gantrain.explore.spaces import LatentSpace, latent_space
from gantrain.metrics.evaluator import build_evaluator, dataset_key
from gantrain.metrics.extractors import build_extractor

log = logging.getLogger("gantrain.explore")
USAGE = "usage: gantrain-explore ckpt=<run dir or checkpoint> explore=<tool> [explore.key=value …] [key=value …]"
TOOLS = {**space_tools.TOOLS, "arithmetic": edit_tools.arithmetic, "direction": edit_tools.direction, "decouple": edit_tools.decouple}


def tool_names() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "explore").glob("*.yaml"))


def explore_settings(tool: str, overrides: dict) -> DictConfig:
    """The ``explore`` config of ``tool`` (configs/explore/<tool>.yaml) with ``overrides`` (``explore.key``:
    value), each checked against the value it replaces."""
    if tool not in tool_names():
        raise ConfigError(f"explore={tool!r}: choose one of {', '.join(tool_names())}")
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(overrides=[f"+explore={tool}"])
    GlobalHydra.instance().clear()
    return validate.update_checked(cfg, overrides, f"explore={tool}").explore


def prefixed(settings: dict) -> dict:
    return {f"explore.{k}": v for k, v in settings.items()}


def check_serves(tool: str, space: LatentSpace, other: Optional[LatentSpace], settings) -> None:
    """One ConfigError when ``tool`` cannot serve this model (before any heavy work)."""
    model = space.family.name
    inverts = space.invertible or (space.encodes and settings.locate != "project")
    if tool == "project" and not inverts:
        raise ConfigError(
            f"explore=project: {model}'s {space.name} is reached by a multi-step sampler and is not inverted; project serves the GANs and the VAE"
        )
    if tool == "interpolate" and settings.endpoints == "heldout" and not inverts:
        raise ConfigError(f"explore.endpoints=heldout needs {model} to locate images; use explore.endpoints=seeds")
    if tool == "truncation" and space.truncation is None:
        raise ConfigError(f"explore=truncation: truncation is a GAN sampling trick, and {model} has none")
    if tool == "map":
        if other is None:
            raise ConfigError("explore=map needs a second model: explore.other=<run dir or checkpoint>")
        if not (other.invertible or other.encodes):
            raise ConfigError(f"explore=map: the other model, {other.family.name}, cannot locate images in its {other.name}")


def out_folder(settings, run_dir: Path) -> Path:
    """``explore.out`` (refused when it holds an explore.json: nothing is overwritten), else a fresh folder."""
    if settings.out:
        out = Path(settings.out)
        if (out / "explore.json").exists():
            raise ConfigError(f"explore.out={settings.out!r} holds an explore.json already: choose another folder (nothing is overwritten)")
    else:
        base = run_dir / "explore" / settings.tool
        out, k = base, 1
        while out.exists():
            k += 1
            out = base.with_name(f"{settings.tool}-{k}")
    validate.check_creatable("explore.out", out)
    return out


def build_measures(cfg, bundle, device) -> Measures:
    """The dataset classifier of ``eval.features`` (none for data without classes, or other features)."""
    labelled = bundle.spec.num_classes >= 2 and "label" in bundle.spec.fields
    extractor = None
    if cfg.eval.features != "classifier" or labelled:
        extractor = build_extractor(
            cfg.eval.features, bundle=bundle, dataset_key=dataset_key(cfg.dataset), eval_cfg=cfg.eval, device=device
        )
    return Measures(extractor, bundle.spec.num_classes, cfg.eval.batch_size)


def explore(ckpt: str, tool: str, settings_overrides: Optional[dict] = None, overrides: Optional[dict] = None) -> dict:
    """Run ``tool`` on ``ckpt``; write and return the record (explore.json)."""
    tic, cpu = time.perf_counter(), time.process_time()
    settings = explore_settings(tool, prefixed(settings_overrides or {}))
    run = load_run(ckpt, overrides)
    space = latent_space(run.family, run.network, settings.space, settings.label)
    other = None
    if settings.other:
        second = load_run(str(settings.other), {"trainer.device": run.cfg.trainer.device})
        if (second.cfg.dataset.channels, second.cfg.dataset.image_size) != (run.cfg.dataset.channels, run.cfg.dataset.image_size):
            raise ConfigError("explore.other makes images of another shape: map needs two models of the same data")
        other = latent_space(second.family, second.network, "z", settings.label)
    check_serves(tool, space, other, settings)
    out = out_folder(settings, run_folder(run.path))
    for net in (run.network, other.network if other else None):
        if net is not None:
            net.requires_grad_(False)
    bundle = build_data(run.cfg)
    device = run.family.device
    evaluator = None
    if tool == "truncation":
        eval_cfg = validate.update_checked(
            run.cfg, {"eval.num_samples": settings.num_samples, "eval.metrics": ["fid", "precision", "recall"]}, "the run"
        )
        evaluator = build_evaluator(eval_cfg, bundle, device)
        measures = Measures(evaluator.extractor, bundle.spec.num_classes, run.cfg.eval.batch_size)
    else:
        measures = build_measures(run.cfg, bundle, device)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(space, measures, settings, out, bundle, other, evaluator)
    try:
        measured = TOOLS[tool](ctx)
    except ValueError as err:  # e.g. a direction no classifier can fit: all sampled latents alike
        raise ConfigError(f"explore={tool}: {err}") from None
    record = {
        "tool": tool,
        "checkpoint": str(run.path),
        "step": int(run.state.get("step", 0)),
        "network": run.which,
        "model": run.cfg.model.name,
        "dataset": run.cfg.dataset.name,
        "other": str(settings.other) if settings.other else None,
        "settings": OmegaConf.to_container(settings, resolve=True),
        "measured": measured,
        "files": ctx.files,
        "seconds": round(time.perf_counter() - tic, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
    }
    path = out / "explore.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    record["path"] = str(path)
    return record


def parse_args(argv: Sequence[str]) -> list[tuple[str, str, dict, dict]]:
    """``ckpt=`` and ``explore=`` (required), ``explore.key=value`` settings and config overrides, as one
    (ckpt, tool, settings, overrides) per run: a comma list of ``explore=`` or ``explore.key=`` values
    (Hydra's sweep syntax, ``explore.attribute=slant,stroke_width``) runs every combination."""
    mine, rest = split_arguments(argv, ("ckpt", "explore"))
    if "ckpt" not in mine or "explore" not in mine:
        raise ConfigError(f"{USAGE}; tools: {', '.join(tool_names())}")
    swept = {k: v for k, v in {**mine, **rest}.items() if isinstance(v, Sweep)}
    if any(not isinstance(v, ChoiceSweep) or not (k == "explore" or k.startswith("explore.")) for k, v in swept.items()):
        raise ConfigError("only explore= and explore.key= take a sweep, as a comma list (explore.attribute=slant,stroke_width)")
    runs = []
    for values in itertools.product(*(v.list for v in swept.values())):
        chosen = {**mine, **rest, **dict(zip(swept, values))}
        settings = {k[len("explore.") :]: v for k, v in chosen.items() if k.startswith("explore.")}
        overrides = {k: v for k, v in rest.items() if not k.startswith("explore.")}
        runs.append((str(chosen["ckpt"]), str(chosen["explore"]), settings, overrides))
    return runs


def scalars(node, prefix: str = "") -> dict:
    """The numbers of a nested record, by dotted key (lists left out)."""
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in scalars(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node} if isinstance(node, (int, float)) and not isinstance(node, bool) else {}


def _explore(argv: list[str]) -> None:
    torch.set_grad_enabled(True)
    runs = parse_args(argv)
    if len(runs) > 1 and runs[0][2].get("out"):
        raise ConfigError("a sweep writes one folder per run: leave explore.out unset")
    for _, tool, settings, _ in runs:  # every run's settings checked before any work
        explore_settings(tool, prefixed(settings))
    for ckpt, tool, settings, overrides in runs:
        report(explore(ckpt, tool, settings, overrides))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Exit codes: 0 done (also for ``--help``); 2 bad input or a model the tool cannot serve; 1 a file could not be
    written; 130 Ctrl-C."""
    usage = f"{USAGE}\n\n{__doc__.strip()}\n\ntools: {', '.join(tool_names())}"
    run_command("gantrain-explore", argv, usage, _explore, "no explore.json written")


def report(record: dict) -> None:
    print(f"{record['model']} on {record['dataset']}, step {record['step']}, {record['tool']} on the {record['network']}")
    for key, value in scalars(record["measured"]).items():
        print(f"  {key:<40}  {value:.6g}")
    print(f"wrote {record['path']} and {len(record['files'])} image(s) ({record['cpu_seconds']} CPU s)")


if __name__ == "__main__":
    main()
