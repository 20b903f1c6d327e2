"""The ``gantrain-translate`` command: translate a folder of images with a trained image-to-image model.

    gantrain-translate ckpt=RUN input=photos/ output=translated/
    gantrain-translate ckpt=RUN input=testB/ output=out/ direction=BtoA        CycleGAN, the other way
    gantrain-translate ckpt=RUN input=faces/ output=out/ domain=2               StarGAN, into one domain

Each input is read as the run's data was (gantrain/data/images.py: any Pillow mode, resized and centre-cropped
to the model's size, the input domain's channels; for SPADE, PNG class-index maps resized by nearest neighbour) and written under the same file name in ``output``, by the
EMA generator when the run kept one. Nothing is overwritten: an output file that exists already stops the
command before any work. Files that cannot be read are listed and skipped. Other ``key=value`` arguments are
options of the family's ``translate`` (``direction``, ``domain``) or config overrides (``trainer.device``).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch
from PIL import Image

from gantrain import checkpoint
from gantrain.cli import build_family, pick_device
from gantrain.data.images import EXTENSIONS, read_image
from gantrain.data.segmentation import read_index_map
from gantrain.errors import ConfigError
from gantrain.evaluate import checkpoint_path, run_command, run_config, sampling_network, split_arguments

log = logging.getLogger("gantrain.translate")
USAGE = (
    "usage: gantrain-translate ckpt=<run dir or checkpoint> input=<folder> output=<folder> [direction=AtoB|BtoA] [domain=K] [key=value …]"
)
OPTIONS = ("direction", "domain")  # handed to the family's translate()


def plan(input_dir: Path, output_dir: Path) -> list[tuple[Path, Path]]:
    """(input file, output file) for every image file of ``input_dir`` (extensions in any case), sorted; refused
    when the folder is missing or empty, or when any output file exists already."""
    if not input_dir.is_dir():
        raise ConfigError(f"input={str(input_dir)!r} is not a folder: pass the folder of images to translate")
    files = sorted(p for p in input_dir.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
    if not files:
        raise ConfigError(f"input={str(input_dir)!r} holds no image file ({', '.join(EXTENSIONS)})")
    pairs = [(p, output_dir / p.name) for p in files]
    existing = [out for _, out in pairs if out.exists()]
    if existing:
        raise ConfigError(
            f"{len(existing)} output file(s) exist already, e.g. {existing[0]}: nothing is overwritten; choose an empty output folder"
        )
    if output_dir.resolve() == input_dir.resolve():
        raise ConfigError("output= is the input folder: choose another folder (file names are kept)")
    return pairs


def write(image: torch.Tensor, out: Path) -> None:
    """Save ``image`` ([-1, 1], 1 or 3 channels: a grey or RGB file) in the format its name says, through a temporary file renamed into place, so an
    interrupted command leaves no partial image."""
    partial = out.with_name(f".{out.name}.partial")
    out.parent.mkdir(parents=True, exist_ok=True)  # at the first image: a refused command leaves no folder
    pixels = ((image.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    try:
        picture = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)  # grey stays grey
        picture.save(partial, format=Image.registered_extensions()[out.suffix.lower()])
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def translate_folder(ckpt: str, input_dir: str, output_dir: str, options: dict, overrides: dict, batch_size: int = 16) -> dict:
    """Translate every image of ``input_dir`` into ``output_dir``; returns counts and the skipped files."""
    path = checkpoint_path(ckpt)
    pairs = plan(Path(input_dir), Path(output_dir))
    state = checkpoint.load(path, required=("config", "networks"))
    cfg = run_config(state, overrides)
    family = build_family(cfg).to(pick_device(cfg.trainer.device))
    if not hasattr(family, "translate"):
        raise ConfigError(f"model={cfg.model.name} does not translate images: gantrain-translate needs an image-to-image model")
    checkpoint.restore(family, state["networks"], str(path))
    network, which = sampling_network(family, state)
    network.eval()
    channels = cfg.dataset.get("source_channels") or cfg.dataset.channels
    size = cfg.dataset.image_size
    if getattr(family, "condition", None) == "segmentation":  # SPADE: inputs are class-index maps, not images

        def read(path: Path) -> torch.Tensor:
            values = torch.from_numpy(read_index_map(path, size))
            if values.max() >= cfg.dataset.num_classes and values.max() != cfg.dataset.get("ignore_index"):
                raise ValueError(f"a class index {int(values.max())} ≥ dataset.num_classes={cfg.dataset.num_classes}")
            return values
    else:

        def read(path: Path) -> torch.Tensor:
            return read_image(path, channels, size)

    skipped, written = [], 0
    for start in range(0, len(pairs), batch_size):
        images, outs = [], []
        for source, out in pairs[start : start + batch_size]:
            try:
                images.append(read(source))
                outs.append(out)
            except (OSError, ValueError, ConfigError) as err:
                skipped.append(f"{source.name} ({err})")
        if not images:
            continue
        with torch.no_grad():
            try:
                result = family.translate(torch.stack(images).to(family.device), network, **options).float().cpu()
            except ValueError as err:  # an option the family does not take, or a value it refuses
                raise ConfigError(f"model={cfg.model.name}: {err}") from None
        for image, out in zip(result, outs):
            write(image, out)
            written += 1
    return {"written": written, "skipped": skipped, "network": which, "model": cfg.model.name, "output": str(output_dir)}


def parse_args(argv: Sequence[str]) -> tuple[dict, dict, dict]:
    """The command's own arguments (ckpt, input, output, batch_size), the family's options and config overrides."""
    own, rest = split_arguments(argv, ("ckpt", "input", "output", "batch_size"))
    options = {k: v for k, v in rest.items() if k in OPTIONS}
    overrides = {k: v for k, v in rest.items() if k not in OPTIONS}
    missing = [k for k in ("ckpt", "input", "output") if k not in own]
    if missing:
        raise ConfigError(f"{missing[0]}= is required; {USAGE}")
    batch = own.get("batch_size", 16)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ConfigError(f"batch_size={batch!r} must be a positive integer")
    return own, options, overrides


def _translate(argv: list[str]) -> None:
    own, options, overrides = parse_args(argv)
    done = translate_folder(str(own["ckpt"]), str(own["input"]), str(own["output"]), options, overrides, own.get("batch_size", 16))
    for line in done["skipped"]:
        print(f"gantrain-translate: skipped {line}", file=sys.stderr)
    print(f"{done['model']}: wrote {done['written']} image(s) to {done['output']} with the {done['network']}", end="")
    print(f"; {len(done['skipped'])} unreadable file(s) skipped" if done["skipped"] else "")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Exit codes: 0 done (also for ``--help``); 2 bad input; 1 a file could not be written; 130 Ctrl-C."""
    run_command("gantrain-translate", argv, f"{USAGE}\n\n{__doc__.strip()}", _translate, "the files written so far are complete")


if __name__ == "__main__":
    main()
