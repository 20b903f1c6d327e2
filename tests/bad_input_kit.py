"""Building blocks of the bad-input suite (tests/test_bad_input.py): tiny configs, folders of good and broken
images, damaged copies of a finished run. Each ``bad_input_cases_*.py`` beside this file adds a ``CASES`` dict of
its own, built from these; test_bad_input.py runs them all."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gantrain import checkpoint

POINTS = [
    "model=mlp",
    "dataset=grid25",
    "model.latent_dim=4",
    "model.generator.hidden=[8]",
    "model.discriminator.hidden=[8]",
    "dataset.source.n=256",
]
QUIET = ["trainer.eval_every=0", "trainer.steps=2", "trainer.batch_size=16", "trainer.num_samples=16"]


# ------------------------------------------------------------------------------------ inputs
def images(folder: Path, n: int = 8, mode: str = "RGB", size: int = 12) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")
    return folder


def garbage(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"broken{i}.png").write_bytes(b"\x89PNG this is not an image" * (i + 1))
    return folder


def folder_case(**files):
    """Overrides for dataset=image_folder on a folder made by ``images`` / ``garbage``."""

    def setup(tmp: Path, run: Path) -> list[str]:
        root = tmp / "data"
        root.mkdir()
        if files.get("rgb"):
            images(root, files["rgb"])
        if files.get("grey"):
            images(root, files["grey"], mode="L")
        if files.get("broken"):
            garbage(root, files["broken"])
        return ["dataset=image_folder", f"dataset.root={root}", "dataset.image_size=16", *files.get("extra", [])]

    return setup


def resumed(damage=None, extra=()):
    """Overrides resuming a copy of a finished run, after ``damage(run_dir, tmp)`` where given."""

    def setup(tmp: Path, finished: Path) -> list[str]:
        run = tmp / "resumed"
        shutil.copytree(finished, run)
        if damage is not None:
            damage(run, tmp)
        return [f"resume={run}", *extra]

    return setup


def fixed(*overrides):
    return lambda tmp, run: list(overrides)


def truncate(run: Path, tmp: Path) -> None:
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])


def other_networks(run: Path, tmp: Path) -> None:
    """The config says mlp with hidden [8], the weights are of hidden [12]: written by another architecture."""
    last = run / "checkpoints" / "last.pt"
    state = checkpoint.load(last)
    state["networks"] = {k: torch.zeros(12, *v.shape[1:]) if v.dim() and v.shape[0] == 8 else v for k, v in state["networks"].items()}
    checkpoint.save(state, last)


def pickle_payload(run: Path, tmp: Path) -> None:
    from test_reliability import malicious_checkpoint

    malicious_checkpoint(run / "checkpoints" / "last.pt", tmp / "marker")


def weights_only_file(run: Path, tmp: Path) -> None:
    checkpoint.save({"generator.weight": torch.zeros(2)}, run / "checkpoints" / "last.pt")


def no_checkpoint_yet(run: Path, tmp: Path) -> None:
    """Hydra recorded the run's config, then it died before its first checkpoint."""
    shutil.rmtree(run / "checkpoints")
    (run / ".hydra").mkdir()
    (run / ".hydra" / "config.yaml").write_text("seed: 0\n")


def already_a_run(tmp: Path, finished: Path) -> list[str]:
    shutil.copytree(finished, tmp / "run")
    return list(POINTS)


CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
