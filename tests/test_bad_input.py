"""Bad input gets one line saying what is wrong and how to fix it, before any work starts, and writes nothing.

Most cases run in-process through ``gantrain.cli.train`` (a ConfigError); a few run the real ``gantrain``
console script to prove the exit code, the single line on stderr and the absence of a traceback.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gantrain.cli
from gantrain.errors import ConfigError

from bad_input_kit import (
    CUDA,
    POINTS,
    QUIET,
    already_a_run,
    fixed,
    folder_case,
    garbage,
    images,
    no_checkpoint_yet,
    other_networks,
    pickle_payload,
    resumed,
    truncate,
    weights_only_file,
)

# id: (setup(tmp, finished_run) -> overrides, what the one line must say)
CASES = {
    # data
    "folder_missing": (
        fixed("dataset=image_folder", "dataset.root=/nonexistent/photos"),
        r"dataset.root='/nonexistent/photos' is not a folder; point it at a folder of images",
    ),
    "folder_empty": (folder_case(), r"no images \(.*\) under '.*data'; point dataset.root at a folder of images"),
    "folder_only_corrupt_files": (folder_case(broken=3), r"none of the 3 image files under '.*data' is a readable image"),
    "folder_grey_for_rgb_model": (folder_case(grey=4), r"all single-channel \(grey\) but dataset.channels=3: pass dataset.channels=1"),
    "folder_labels_without_classes": (
        folder_case(rgb=4, extra=["dataset.labels=true"]),
        r"dataset.labels=true needs one subfolder per class .* found 0",
    ),
    "folder_smaller_than_a_batch": (
        folder_case(rgb=3, extra=["trainer.batch_size=64"]),
        r"has 2 samples, fewer than one batch of 64; lower trainer.batch_size",
    ),
    "folder_two_channels": (
        folder_case(rgb=3, extra=["dataset.channels=2"]),
        r"dataset.channels=2: image folders are read as 1 \(grey\) or 3 \(RGB\) channels",
    ),
    "mnist_files_missing": (
        lambda tmp, run: ["dataset=mnist", f"dataset.root={tmp / 'nothing'}"],
        r"mnist is not under dataset.root=.*; pass dataset.download=true to fetch it",
    ),
    # models for the data
    "image_size_not_a_power_of_two": (fixed("dataset.image_size=20"), r"image_size=20 is not one \(try 16 or 32\)"),
    "image_size_zero": (fixed("dataset.image_size=0"), r"dataset.image_size=0 must be a positive integer"),
    "conv_model_on_points": (fixed("model=dcgan", "dataset=grid25"), r"gives points: use model=mlp for 2D data"),
    "conditional_on_unlabelled_points": (
        fixed("model=cgan", "dataset=grid25"),
        r"model=cgan with dataset=grid25: cgan is conditional and needs class labels",
    ),
    "acgan_on_unlabelled_folder": (
        folder_case(rgb=8, extra=["model=acgan"]),
        r"acgan is conditional and needs class labels, but this dataset has none",
    ),
    "dropout_above_one": (
        fixed(*POINTS, "model.discriminator.dropout=1.5"),
        r"\(model.discriminator\): dropout probability has to be between 0 and 1, but got 1.5",
    ),
    "mixing_probability_negative": (
        fixed("model=stylegan", "model.generator.mixing_prob=-0.1"),
        r"\(model.generator\): mixing_prob=-0.1 is a probability: use a value in \[0, 1\]",
    ),
    # optimisation
    "lr_negative": (fixed(*POINTS, "optimizer.lr=-0.001"), r"optimizer.lr=-0.001 must be a positive learning rate"),
    "lr_zero": (fixed(*POINTS, "optimizer.lr=0"), r"optimizer.lr=0 must be a positive learning rate"),
    "lr_of_discriminator_zero": (fixed(*POINTS, "optimizer.lr_d=0.0"), r"optimizer.lr_d=0.0 must be a positive"),
    "batch_size_zero": (fixed(*POINTS, "trainer.batch_size=0"), r"trainer.batch_size=0 must be a positive integer"),
    "batch_size_negative": (fixed(*POINTS, "trainer.batch_size=-8"), r"trainer.batch_size=-8 must be a positive integer"),
    "k_zero": (fixed(*POINTS, "trainer.d_steps=0"), r"trainer.d_steps=0 must be a positive integer"),
    "steps_fractional": (fixed(*POINTS, "trainer.steps=1.5"), r"trainer.steps=1.5 must be a positive integer"),
    "ema_decay_one": (fixed(*POINTS, "trainer.ema=1.0"), r"trainer.ema=1.0 is an EMA decay: use 0 \(off\) or a value"),
    "adam_beta_above_one": (
        fixed(*POINTS, "optimizer.betas=[1.5,0.999]"),
        r"Invalid beta parameter at index 0: 1.5; fix the optimizer.\* setting",
    ),
    "sgd_momentum_negative": (
        fixed(*POINTS, "optimizer=sgd", "optimizer.momentum=-0.5"),
        r"Invalid momentum value: -0.5; fix the optimizer.\* setting",
    ),
    "grad_clip_negative": (fixed(*POINTS, "trainer.grad_clip=-1"), r"trainer.grad_clip=-1 is a maximum gradient norm"),
    "nan_policy_unknown": (fixed(*POINTS, "trainer.nan_policy=ignore"), r"trainer.nan_policy='ignore': use stop .* or skip"),
    "amp_dtype_unknown": (fixed(*POINTS, "trainer.amp_dtype=float8"), r"trainer.amp_dtype='float8': use bfloat16 or float16"),
    "num_workers_negative": (fixed(*POINTS, "trainer.num_workers=-1"), r"trainer.num_workers=-1 must be 0 .* or more"),
    "cuda_without_gpu": pytest.param(fixed(*POINTS, "trainer.device=cuda"), r"no CUDA GPU is visible; use trainer.device=auto", marks=CUDA),
    # runs and checkpoints
    "resume_path_missing": (fixed("resume=/nonexistent/run"), r"resume='/nonexistent/run' is not a gantrain run directory"),
    "resume_path_not_a_run": (lambda tmp, run: [f"resume={tmp}"], r"is not a gantrain run directory .* e.g. outputs/DATE/TIME"),
    "resume_before_first_checkpoint": (resumed(no_checkpoint_yet), r"stopped before its first checkpoint: start it again"),
    "resume_truncated_checkpoint": (resumed(truncate), r"last.pt' is truncated or not a checkpoint .*start a new run"),
    "resume_checkpoint_of_other_networks": (
        resumed(other_networks),
        r"holds the weights of other networks .* use a checkpoint of this one",
    ),
    "resume_pickle_payload": (resumed(pickle_payload), r"holds the Python object .*open, not only tensors: refused unread"),
    "resume_weights_not_a_training_checkpoint": (
        resumed(weights_only_file),
        r"is not a gantrain training checkpoint \(it lacks family, step",
    ),
    "resume_changes_a_value": (
        resumed(extra=["trainer.steps=99"]),
        r"resuming would change trainer.steps: 2 -> 99; add override_resume=true to accept",
    ),
    "resume_switches_the_model": (resumed(extra=["model=dcgan"]), r"resume cannot switch model=dcgan: start a new run"),
    "new_run_in_a_finished_run_dir": (already_a_run, r"already holds a run; pass resume=.* to continue it"),
}
for _module in sorted(Path(__file__).parent.glob("bad_input_cases_*.py")):  # each area's cases, in their own file
    CASES.update(importlib.import_module(_module.stem).CASES)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished two-step run of the tiny MLP on the 2D grid."""
    from conftest import compose_config

    run = tmp_path_factory.mktemp("finished") / "run"
    gantrain.cli.train(compose_config([*POINTS, *QUIET]), run)
    return run


def snapshot(root: Path) -> dict[str, tuple]:
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.mark.parametrize("setup, expected", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_one_line_before_any_work(setup, expected, compose, tmp_path, monkeypatch, finished_run):
    monkeypatch.chdir(tmp_path)  # anything written relative to the working directory would show up
    overrides = [*QUIET, *setup(tmp_path, finished_run)]
    cfg = compose(overrides)
    run_dir = Path(cfg.resume) if cfg.resume else tmp_path / "run"  # where Hydra would run it
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError) as err:
        gantrain.cli.train(cfg, run_dir, overrides)
    message = str(err.value)
    assert "\n" not in message and re.search(expected, message), message
    # nothing written anywhere: not beside the inputs, not in a resumed run, not even the new run dir
    assert snapshot(tmp_path) == before


def test_unknown_option_names_get_hydras_list_of_valid_ones(compose):
    from hydra.errors import MissingConfigException

    for group, wrong, valid in (("loss", "nonsaturing", "nonsaturating"), ("regularizer", "gradient_penalt", "r1")):
        with pytest.raises(MissingConfigException, match=rf"(?s)Could not find '{group}/{wrong}'.*\t{valid}\n"):
            compose([f"{group}={wrong}"])


# ------------------------------------------------------------------------------------ the console script
PROC = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc")
# name: (arguments, environment, exit code, the one line's regex)
CONSOLE = {
    "missing_folder": (["dataset=image_folder", "dataset.root=/nonexistent/photos"], {}, 2, r"dataset.root='/nonexistent/photos'"),
    "pickle_resume": (None, {}, 2, r"'.*last.pt' holds the Python object"),  # resume= a run whose checkpoint carries a pickle payload
    "unknown_loss": (["loss=nonsaturing"], {}, 1, None),  # Hydra's own error and code
    "full_error": (["dataset=image_folder", "dataset.root=/nonexistent/photos"], {"HYDRA_FULL_ERROR": "1"}, 1, None),
    # what Hydra itself would refuse with a traceback or its usage text (validate.check_command_line; more below)
    "override_without_equals": (
        ["trainer.steps"],
        {},
        2,
        r"cannot read the override 'trainer.steps' \(missing EQUAL at '<EOF>'\): write key=",
    ),
    "run_dir_in_proc": (
        ["hydra.run.dir=/proc/gantrain-run"],
        {},
        2,
        r"hydra.run.dir='/proc/gantrain-run' cannot be created \(.*\); choose",
    ),
}


@pytest.fixture(scope="module")
def console(tmp_path_factory, finished_run):
    """Each case run by the real ``gantrain`` in its own empty working directory, all started at once."""
    root = tmp_path_factory.mktemp("console")
    procs = {}
    for name, (args, env, _, _) in CONSOLE.items():
        cwd = root / name
        cwd.mkdir()
        if args is None:
            run = cwd / "old_run"
            shutil.copytree(finished_run, run)
            pickle_payload(run, cwd)
            args = [f"resume={run}"]
        before = snapshot(cwd)
        procs[name] = (
            cwd,
            before,
            subprocess.Popen(
                [str(Path(sys.executable).parent / "gantrain"), *args, *QUIET],
                cwd=cwd,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, "OMP_NUM_THREADS": "1", **env},
            ),
        )
    results = {}
    try:
        for name, (cwd, before, proc) in procs.items():
            out, err = proc.communicate(timeout=300)
            results[name] = (cwd, before, proc.returncode, out, err)
    finally:  # a stuck process fails the tests that need it, and does not outlive them
        for _, _, proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=PROC if "proc" in n.split("_") else ()) for n, (_, env, _, _) in CONSOLE.items() if not env]
)
def test_console_script_prints_one_line_and_exits_with_its_code(name, console):
    cwd, before, returncode, out, err = console[name]
    assert "Traceback" not in out + err
    if name == "unknown_loss":
        assert err.startswith("In 'train': Could not find 'loss/nonsaturing'") and "\tnonsaturating\n" in err
    else:
        assert re.fullmatch(r"gantrain: error: [^\n]+\n", err) and re.match(f"gantrain: error: {CONSOLE[name][3]}", err), err
    assert returncode == CONSOLE[name][2]
    after = snapshot(cwd)
    # a new run: only Hydra's record of it (outputs/DATE/TIME/.hydra/*.yaml and its gantrain.log)
    new_run = r"outputs(/[\d-]+(/[\d-]+(/\.hydra(/\w+\.yaml)?|/gantrain\.log)?)?)?"
    assert all(re.fullmatch(new_run, c) for c in set(after) - set(before) - {"old_run/gantrain.log"}), after
    # a resumed run: its checkpoint and files untouched; its log notes the refused attempt
    assert {k: v for k, v in after.items() if k in before and not k.startswith("old_run")} == {
        k: v for k, v in before.items() if not k.startswith("old_run")
    }
    assert {k: v for k, v in after.items() if k.startswith("old_run/") and k != "old_run/gantrain.log"} == {
        k: v for k, v in before.items() if k.startswith("old_run/")
    }


def test_hydra_full_error_shows_the_traceback(console):
    _, _, returncode, out, err = console["full_error"]
    assert returncode == 1 and "Traceback" in err
    assert "gantrain.errors.ConfigError: dataset.root='/nonexistent/photos' is not a folder" in err


HYDRA_REFUSES = {
    "override_without_key": (["=1"], r"the override '=1' has no key: write key=value$"),
    "unclosed_list": (["model=[a"], r"cannot read the override 'model=\[a' \(no viable alternative at input '\[a'\): write key=value"),
    "unclosed_interpolation": (["+x=${now:a"], r"cannot read the override '\+x=\$\{now:a' \(.*\): write key=value, quoting the value$"),
    "bad_override_after_options": (["-m", "--cfg", "job", "seed=1,2", "model"], r"cannot read the override 'model' \(missing EQUAL"),
    "run_dir_under_a_file": (["hydra.run.dir=afile/run"], r"hydra.run.dir='afile/run' cannot be a folder: '.*afile' is a file"),
    # folders a file system refuses although access() allows them (as for root)
    "sweep_dir_in_proc": pytest.param(
        ["-m", "hydra.sweep.dir=/proc/gantrain-sweep/${now:%H}", "seed=1,2"],
        r"hydra.sweep.dir='/proc/gantrain-sweep/' cannot be created",
        marks=PROC,
    ),
}


@pytest.mark.parametrize("argv, expected", list(HYDRA_REFUSES.values()), ids=list(HYDRA_REFUSES))
def test_what_hydra_itself_would_refuse_is_one_line_first(argv, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder\n")
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError) as err:
        gantrain.validate.check_command_line([*argv, *QUIET])
    assert "\n" not in str(err.value) and re.match(expected, str(err.value)), str(err.value)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["-m", "seed=1,2", "hydra/sweeper=basic"], ["--cfg", "job", "model=mlp"], ["--cfg"], ["hydra.run.dir=new/run", "seed=3"]],
)
def test_hydras_options_and_good_overrides_pass_the_command_line_check(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gantrain.validate.check_command_line(argv)  # --cfg without its value: Hydra's own usage message says so
    assert list(tmp_path.iterdir()) == []  # the run folder was made and removed again


# ------------------------------------------------------------------------------------ damaged files in a folder
def test_unreadable_files_in_a_folder_are_skipped_with_a_counted_warning(tmp_path, caplog):
    from gantrain.data.folder import image_folder

    root = garbage(images(tmp_path / "data", 6), 2)
    with caplog.at_level("WARNING", logger="gantrain.data.folder"):
        bundle = image_folder(str(root), image_size=8, holdout=0.0)
    assert len(bundle.train) + len(bundle.heldout) == 6
    assert "skipped 2 of 8 files under" in caplog.text and "broken0.png" in caplog.text


def test_a_mixed_grey_and_colour_folder_is_converted(tmp_path):
    from gantrain.data.folder import image_folder

    root = images(tmp_path / "data", 3, mode="L")
    images(root / "colour", 3)
    bundle = image_folder(str(root), image_size=8, channels=3, holdout=0.0)
    assert bundle.train[0]["image"].shape == (3, 8, 8)


def test_an_image_damaged_after_its_header_stops_the_run_naming_the_file(tmp_path):
    from gantrain.data.folder import image_folder

    root = images(tmp_path / "data", 2, size=64)
    damaged = root / "0.png"
    damaged.write_bytes(damaged.read_bytes()[:200])  # the header reads, the pixels do not
    bundle = image_folder(str(root), image_size=8, holdout=0.0)
    index = [str(f) for f in bundle.train.dataset.files].index(str(damaged))
    with pytest.raises(ConfigError, match=r"image '.*0.png' does not decode .*: delete or replace it, then resume"):
        bundle.train.dataset[index]
