"""The ``gantrain-generate`` command: a grid of samples from a trained checkpoint.

    gantrain-generate ckpt=RUN prompt="a thick seven" n=16          a text-to-image model, for one caption
    gantrain-generate ckpt=RUN prompt=["a thin one","a big eight"]   one row per caption
    gantrain-generate ckpt=RUN n=64 out=samples.png                  any GAN: unconditional (or one column per class)

Samples come from the EMA generator when the run kept one. Without ``out=`` the grid is written to
``RUN/generated/<prompt or samples>.png`` (with the prompts in a ``.txt`` beside it); an existing file is never
overwritten. ``seed=`` picks the latents; other ``key=value`` arguments override the run's config
(``trainer.device``, ``dataset.root`` …).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Sequence

import torch

from gantrain import checkpoint, validate
from gantrain.cli import build_data, build_family, pick_device
from gantrain.data import take
from gantrain.errors import ConfigError
from gantrain.evaluate import checkpoint_path, run_command, run_config, sampling_network, split_arguments
from gantrain.visualize import Grid, render, save_picture

USAGE = 'usage: gantrain-generate ckpt=<run dir or checkpoint> [prompt="a thick seven" | prompt=[…]] [n=16] [seed=0] [out=grid.png] [key=value …]'


def output_path(run_dir: Path, prompts: Optional[list[str]], out: Optional[str]) -> Path:
    if out is not None:
        path = Path(out)
    else:
        stem = re.sub(r"[^a-z0-9]+", "_", " ".join(prompts).lower()).strip("_")[:80] if prompts else "samples"
        path = run_dir / "generated" / f"{stem or 'prompt'}.png"
    if path.suffix.lower() != ".png":
        raise ConfigError(f"out={str(path)!r}: the grid is written as a PNG; give a .png file name")
    if path.exists():
        raise ConfigError(f"{path} exists already: nothing is overwritten; give another out=")
    validate.check_writable("out", path.parent)
    return path


def generate(ckpt: str, prompts: Optional[list[str]], n: int, seed: int, out: Optional[str], overrides: dict) -> dict:
    """Write the grid of ``n`` samples (per prompt, if any) of ``ckpt``; returns what was written."""
    path = checkpoint_path(ckpt)
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    target = output_path(run_dir, prompts, out)
    state = checkpoint.load(path, required=("config", "networks"))
    cfg = run_config(state, overrides)
    family = build_family(cfg).to(pick_device(cfg.trainer.device))
    checkpoint.restore(family, state["networks"], str(path))
    network, which = sampling_network(family, state)
    network.eval()
    family.eval()
    generator = torch.Generator().manual_seed(seed)
    if prompts:
        if not hasattr(family, "prompt_inputs"):
            raise ConfigError(f"model={cfg.model.name} does not take prompts: leave prompt= out for its samples")
        inputs = family.prompt_inputs(prompts, n, generator)
    else:
        try:
            inputs = family.fixed_inputs(n, generator)
        except ValueError:  # conditioned on data (captions, images): the held-out split's
            inputs = family.fixed_inputs(n, generator, take(build_data(cfg).heldout, n))
    with torch.no_grad():
        inputs = {k: v.to(family.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        images = family.generate(inputs, network).float().cpu()
    if images.dim() != 4:
        raise ConfigError(f"model={cfg.model.name} makes points, not images: gantrain-generate writes image grids")
    # a row per prompt, labelled; else the family's own layout (a labelled column per class), square by default
    grid = Grid(images.unflatten(0, (len(prompts), n)), row_labels=prompts) if prompts else family.sample_preview(images, inputs)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_picture(render(grid if isinstance(grid, Grid) else Grid.of(grid)), target)
    if prompts:
        target.with_suffix(".txt").write_text("".join(f"row {i + 1}: {p}\n" for i, p in enumerate(prompts)), encoding="utf-8")
    return {"path": str(target), "count": len(images), "network": which, "model": cfg.model.name}


def parse_args(argv: Sequence[str]) -> tuple[dict, dict]:
    own, overrides = split_arguments(argv, ("ckpt", "prompt", "n", "seed", "out"))
    if "ckpt" not in own:
        raise ConfigError(f"ckpt= is required; {USAGE}")
    for key, default in (("n", 16), ("seed", 0)):
        value = own.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < (1 if key == "n" else 0):
            raise ConfigError(f"{key}={value!r} must be a {'positive' if key == 'n' else 'non-negative'} integer")
        own[key] = value
    prompt = own.get("prompt")
    prompts = None if prompt is None else [str(p) for p in (prompt if isinstance(prompt, list) else [prompt])]
    if prompts is not None and (not prompts or not all(p.strip() for p in prompts)):
        raise ConfigError('prompt= is empty: give a caption, e.g. prompt="a thick seven"')
    own["prompt"] = prompts
    return own, overrides


def _generate(argv: list[str]) -> None:
    own, overrides = parse_args(argv)
    done = generate(str(own["ckpt"]), own["prompt"], own["n"], own["seed"], own.get("out"), overrides)
    print(f"{done['model']}: wrote {done['count']} samples from the {done['network']} to {done['path']}")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Exit codes: 0 done (also for ``--help``); 2 bad input; 1 a file could not be written; 130 Ctrl-C."""
    run_command("gantrain-generate", argv, f"{USAGE}\n\n{__doc__.strip()}", _generate, "nothing written")


if __name__ == "__main__":
    main()
