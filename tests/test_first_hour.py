"""What a new user sees: the README's commands as typed, the help, the console, previews readable at their size."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
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


# ------------------------------------------------------------------ previews a person can read
def _ink(picture, box) -> bool:
    """Whether the part ``box`` = (top, bottom, left, right) of a uint8 picture holds dark (label) pixels."""
    top, bottom, left, right = box
    return bool((picture[top:bottom, left:right] < 128).any())


def test_the_default_run_saves_digits_at_64_px_and_logs_real_data_beside_the_samples(compose, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from gantrain.cli import train

    cfg = compose(["trainer.steps=1", "trainer.batch_size=16", "trainer.eval_every=0"])
    assert (cfg.dataset.image_size, cfg.trainer.num_samples) == (16, 100)
    train(cfg, tmp_path)
    width, height = Image.open(tmp_path / "samples" / "step_0000001.png").size
    assert width == height and width / 10 >= 64 + 2  # 10 × 10 digits, each drawn 4× with a 2-px gap
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0}).Reload()
    assert {"samples", "real"} <= set(events.Tags()["images"])
    (real,) = events.Images("real")
    assert (real.width, real.height) == (width, height)  # the same layout as the samples, to compare


def test_labels_add_a_band_with_their_text_and_groups_stand_apart(tmp_path):
    import torch

    from gantrain.visualize import GAP, GROUP_GAP, Grid, layout, render

    images = torch.rand(2, 3, 1, 16, 16) * 2 - 1
    plain, labelled = render(Grid(images)), render(Grid(images, ["a", "b", "c"], ["ψ = 0.7", "ψ = 0"]))
    assert plain.shape == (3, GAP + 2 * (64 + GAP), GAP + 3 * (64 + GAP))
    at = layout(Grid(images, ["a", "b", "c"], ["ψ = 0.7", "ψ = 0"]))
    assert labelled.shape[1] - plain.shape[1] == at.top[0] - GAP > 10  # a band for the column labels
    assert labelled.shape[2] - plain.shape[2] == at.left[0] - GAP > 20  # and one for the row labels
    picture = (labelled[0] * 255).numpy()
    for j in range(3):  # each column's label drawn above it, each row's to its left
        assert _ink(picture, (0, at.top[0], at.left[j], at.left[j] + 64))
    for i in range(2):
        assert _ink(picture, (at.top[i], at.top[i] + 64, 0, at.left[0]))
    assert not _ink(picture, (0, at.top[0], 0, at.left[0]))  # the corner stays blank
    # a sample's input | output pair: 2 px inside a pair, a 12-px white gap between pairs
    pairs = Grid.of_groups([images[0], images[1]], ["input", "output"], per_row=3)
    at = layout(pairs)
    assert at.left[1] - at.left[0] == 64 + GAP and at.left[2] - at.left[1] == 64 + GROUP_GAP
    picture = (render(pairs)[0] * 255).numpy()
    assert (picture[at.top[0] :, at.left[1] + 64 : at.left[2]] == 255).all()


def test_memorization_grid_is_drawn_at_64_px_with_its_columns_named(tmp_path):
    import torch

    from gantrain.visualize import GAP, memorization_figures

    samples, neighbours = torch.rand(3, 1, 16, 16) * 2 - 1, torch.rand(3, 2, 1, 16, 16) * 2 - 1
    memorization_figures(samples, neighbours, torch.rand(50), torch.rand(50), "pixels", 1.0, out_dir=tmp_path)
    picture = np.asarray(Image.open(tmp_path / "memorization.png").convert("L"))
    top = picture.shape[0] - 3 * (64 + GAP)
    assert top > 10 and _ink(picture, (0, top, 0, 64))  # "sample" above the first column
    assert picture.shape[1] >= 3 * (64 + GAP) + 10  # the sample set apart from its neighbours


# ------------------------------------------------------------------ the console
def test_a_run_shorter_than_log_every_shows_short_lines_on_the_console_and_every_key_in_the_log_file(tmp_path):
    """The default log_every (50) over a 3-step run: a line after the first step and after the last; on the console
    the step, the losses and images/s in under 120 characters, in the log file every logged key."""
    result = gantrain("trainer.steps=3", "trainer.batch_size=16", "trainer.eval_every=0", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    console = [line for line in result.stdout.splitlines() if "step " in line]
    assert [line.split("] ", 1)[1].split("  ")[0] for line in console] == ["step 1/3", "step 3/3"]
    assert all(len(line) <= 120 and " D " in line and " G " in line and line.endswith(" img/s") for line in console), console
    logged = [line for line in (tmp_path / "run" / "gantrain.log").read_text().splitlines() if "gantrain.trainer" in line]
    assert [re.search(r"step (\d+):", line).group(1) for line in logged] == ["1", "3"]
    keys = ("loss/D=", "loss/G=", "D/real=", "D/fake=", "grad_norm/generator=", "speed/images_per_s=", "lr/generator=")
    assert all(key in logged[0] for key in keys) and all(key in logged[1] for key in keys if "grad_norm" not in key)
    log = (tmp_path / "run" / "gantrain.log").read_text()  # the default's R1 takes D's batch norm out, said once
    assert log.count("r1: the discriminator's batch norm") == 1 and "[WARNING]" not in log


def test_short_lines_keep_to_their_width_and_say_what_they_left_out():
    from gantrain.loop.console import eval_line, log_line

    many = {f"loss/term_{i}": 1.0 / 3 for i in range(20)} | {"D/real": 0.5, "speed/images_per_s": 1234.5}
    line = log_line(150, 1500, many)
    assert line.startswith("step 150/1500  term_0 0.3333") and line.endswith("…  1234 img/s") and len(line) <= 100
    assert "D/real" not in line
    metrics = {"FID/classifier": 140.2, "IS/classifier": 6.49, "KID/classifier": 255.0, "precision/classifier": 0.6}
    metrics |= {f"other_{i}/classifier": 0.1 for i in range(10)}
    line = eval_line(500, 1500, metrics, first="KID/classifier")
    assert line.startswith("step 500/1500 eval:  KID/classifier 255  FID/classifier 140.2") and line.endswith("…")
    assert len(line) <= 100


def test_the_progress_bar_is_drawn_in_a_terminal_that_reports_no_size():
    """A pseudo-terminal of 0 × 0 (a container started without one): tqdm would draw an empty bar."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    from gantrain.loop.console import progress_bar

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
    with os.fdopen(follower, "w") as terminal:
        with progress_bar(4, 0, "dcgan", file=terminal) as bar:
            for _ in range(4):
                bar.update(1)
        terminal.flush()
        shown = ""
        while select.select([leader], [], [], 0.5)[0]:
            shown += os.read(leader, 65536).decode()
    os.close(leader)
    assert "dcgan: 100%" in shown and "4/4" in shown


# ------------------------------------------------------------------ the help
def test_help_explains_every_option_setting_and_command_in_lines_a_person_reads(tmp_path):
    from dataclasses import fields

    from gantrain.cli import config_dir
    from gantrain.settings import TrainerSettings

    result = gantrain("--help", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    text = result.stdout
    assert "${" not in text and all(len(line) <= 120 for line in text.splitlines())
    for group in ("model", "dataset", "loss", "regularizer", "optimizer", "experiment"):
        options = sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))
        section = text.split(f"\n{group}: ", 1)[1].split("\n\n", 1)[0]
        rows = [line.split(None, 1) for line in section.splitlines()[1:]]
        assert [row[0] for row in rows] == options and all(len(row) == 2 and len(row[1]) > 10 for row in rows), group
    assert "\n  dcgan            DCGAN (Radford et al. 2016)" in text  # the first sentence of its YAML's comment
    assert "(default: tuned; here: r1)" in text  # what `tuned` builds for gantrain's DCGAN on digits
    settings = {line.split()[0]: line for line in text.splitlines() if line.startswith("  trainer.")}
    tuned = OmegaConf.load(config_dir() / "tuning" / "dcgan_nonsaturating_adam_digits.yaml").trainer
    for f in fields(TrainerSettings):
        default = str(f.default).lower() if isinstance(f.default, bool) else f.default
        default = 100 if f.name == "num_samples" else default  # the digits' preview_samples
        default = tuned.get(f.name, default)  # plain gantrain's tuning on top of the defaults
        row = settings[f"trainer.{f.name}={default}"]
        assert len(row.split(None, 1)) == 2, f.name  # with its meaning
    for key in ("eval.features=auto", "eval.num_samples=2000", "eval.inception_weights=null", "seed=0", "override_resume=false"):
        assert re.search(rf"^  {re.escape(key)} +\w", text, re.M), key
    for command in ("gantrain-eval ckpt=RUN", "gantrain-translate ckpt=RUN", "gantrain resume=RUN", "override_resume=true"):
        assert command in text, command
    assert "HYDRA_FULL_ERROR=1" in text and "gantrain --cfg job" in text


def test_help_shows_the_values_of_the_command_line_it_follows(monkeypatch, capsys):
    import gantrain.cli

    monkeypatch.setattr(sys, "argv", ["gantrain", "loss=wgan_gp", "trainer.steps=7", "-h"])
    gantrain.cli.main()
    text = capsys.readouterr().out
    assert re.search(r"^  trainer.d_steps=5 ", text, re.M) and re.search(r"^  trainer.steps=7 ", text, re.M)
    assert "(default: tuned; here: gradient_penalty)" in text  # the regularizer wgan_gp brings
