"""What a new user sees: the README's commands as typed, the help, the console, previews readable at their size."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FEW_STEPS = ["trainer.steps=2", "trainer.batch_size=4"]  # only for the test's speed


def gantrain(*args, cwd, env=None) -> subprocess.CompletedProcess:
    """``gantrain ARGS`` with this tree's package, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "gantrain.cli", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def readme_usage_line(start: str) -> list[str]:
    """The README Usage block's command that starts with ``start``, split as a shell would (comment dropped)."""
    usage = ROOT.joinpath("README.md").read_text().split("## Usage", 1)[1].split("```", 2)[1]
    (line,) = [line for line in usage.splitlines() if line.startswith(start)]
    return shlex.split(line.split("  #")[0])


def test_the_readme_image_folder_example_trains_an_unlabelled_folder_with_one_warning(tmp_path):
    """No class subfolders, no Inception weights: the run trains unevaluated and says once how to get metrics."""
    faces = tmp_path / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(faces / f"{i}.png")
    command = readme_usage_line("gantrain dataset=image_folder")
    assert command[:2] == ["gantrain", "dataset=image_folder"] and "dataset.root=~/faces" in command
    args = [a.replace("~/faces", str(faces)) for a in command[1:]]
    env = {"TORCH_HOME": str(tmp_path / "torch")}  # no Inception weights in the cache
    result = gantrain(*args, *FEW_STEPS, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    warnings = [line for line in output.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, warnings
    assert "training without metrics" in warnings[0] and "eval.features=inception eval.inception_weights=FILE" in warnings[0]
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    assert not (tmp_path / "run" / "checkpoints" / "best.pt").exists()  # nothing was measured


def test_auto_features_pick_the_classifier_for_labels_inception_when_its_weights_are_given_else_none(tmp_path, monkeypatch):
    import torch

    from gantrain.data import DataBundle, DataSpec, InMemory
    from gantrain.metrics.extractors import auto_features

    pytest.importorskip("torch_fidelity")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    images = InMemory({"image": torch.zeros(4, 3, 8, 8)})
    unlabelled = DataBundle(images, images, DataSpec("image", (3, 8, 8), 0))
    labelled = DataBundle(images, images, DataSpec("image", (3, 8, 8), 3))
    assert auto_features(labelled, {}) == "classifier"
    assert auto_features(unlabelled, {}) == "none"
    assert auto_features(unlabelled, {"inception_weights": "weights.pth"}) == "inception"
    cached = tmp_path / "hub" / "checkpoints"
    cached.mkdir(parents=True)
    from gantrain.metrics.features import INCEPTION_FILE

    (cached / INCEPTION_FILE).write_bytes(b"")
    assert auto_features(unlabelled, {}) == "inception"
