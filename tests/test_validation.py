"""The config checks of gantrain/validate.py from the outside: the real console script's one line and exit code,
checks that run before any data is built, folders that cannot be written, and valid values that pass."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gantrain.cli
from gantrain.errors import ConfigError

from bad_input_kit import POINTS, QUIET

CONSOLE = {
    "seed_negative": ([*POINTS, "seed=-1"], r"seed=-1 is a seed: use an integer from 0 to 4294967295"),
    "lr_a_word": ([*POINTS, "optimizer.lr=1e-3x"], r"optimizer.lr='1e-3x' must be a number"),
    "group_with_plus": ([*POINTS, "+modle=vae"], r"\+modle: modle is not a setting gantrain reads; did you mean model\?"),
    "folder_without_root": (["dataset=image_folder"], r"dataset.root is required: pass dataset.root=PATH"),
}


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """Each case run by the real ``gantrain`` in its own empty working directory, all started at once."""
    root, procs = tmp_path_factory.mktemp("console"), {}
    for name, (args, _) in CONSOLE.items():
        (root / name).mkdir()
        procs[name] = subprocess.Popen(
            [str(Path(sys.executable).parent / "gantrain"), *QUIET, *args],
            cwd=root / name,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    try:
        return {name: (proc.communicate(timeout=300), proc.returncode) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.mark.parametrize("name", list(CONSOLE))
def test_console_script_refuses_a_bad_value_in_one_line_with_exit_code_2(name, console):
    (out, err), returncode = console[name]
    assert returncode == 2 and "Traceback" not in out + err
    assert re.fullmatch(rf"gantrain: error: {CONSOLE[name][1]}[^\n]*\n", err), err


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["dataset.image_size=1024"], r"dataset.image_size=1024: dataset=digits is held in memory"),
        (["dataset.image_size=20"], r"image_size=20 is not one \(try 16 or 32\)"),  # the model's rule, from the config
        (["model.generator.width=0"], r"model.generator.width=0 must be a positive integer"),
    ],
)
def test_what_the_config_alone_refuses_is_refused_before_the_data_is_built(overrides, message, compose, tmp_path, monkeypatch):
    def no_data(cfg):
        raise AssertionError("the data was built before the config was checked")

    monkeypatch.setattr(gantrain.cli, "build_data", no_data)
    overrides = [*QUIET, *overrides]
    with pytest.raises(ConfigError, match=message):
        gantrain.cli.train(compose(overrides), tmp_path / "run", overrides)


def test_a_read_only_run_folder_or_cache_is_refused_before_any_work(compose, tmp_path, monkeypatch):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != read_only and real_access(path, mode))
    overrides = [*POINTS, *QUIET]
    with pytest.raises(ConfigError, match=r"^hydra.run.dir='.*ro/new/run' is not writable \('.*ro' is read-only\)"):
        gantrain.cli.train(compose(overrides), read_only / "new" / "run", overrides)
    overrides = [*POINTS, *QUIET, "trainer.eval_every=1", f"eval.cache_dir={read_only / 'cache'}"]
    with pytest.raises(ConfigError, match=r"^eval.cache_dir='.*ro/cache' is not writable"):
        gantrain.cli.train(compose(overrides), tmp_path / "run", overrides)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["ro"]  # nothing created


@pytest.mark.parametrize(
    "overrides",
    [
        ["+optimizer.weight_decay=0.01"],  # an argument of torch.optim.Adam
        ["optimizer.per_phase={discriminator:{lr:4e-4,betas:[0,0.9]}}", "optimizer.lr_g=1e-4"],
        ["+eval.features={_target_:torch.nn.Flatten}"],
        ["seed=4294967295", "optimizer.lr=1", "model.latent_dim=1", "optimizer.betas=[0,0.99]"],
        ["model=progan", "model.phase_images=0", "dataset.image_size=8"],
        ["model=mlp", "dataset.image_size=128"],
    ],
)
def test_valid_values_and_additions_pass_the_checks(overrides, compose, tmp_path):
    cfg = compose(overrides)
    assert gantrain.cli.check_config(cfg, overrides, tmp_path / "run").steps == cfg.trainer.steps
    assert not (tmp_path / "run").exists()


def test_gantrain_eval_refuses_an_out_it_cannot_write_before_any_work(compose, tmp_path, monkeypatch):
    import gantrain.evaluate

    overrides = [*POINTS, *QUIET]
    gantrain.cli.train(compose(overrides), tmp_path / "run", overrides)
    (tmp_path / "afile").write_text("not a folder\n")

    def no_data(cfg):
        raise AssertionError("the data was built before out= was checked")

    monkeypatch.setattr(gantrain.evaluate, "build_data", no_data)
    with pytest.raises(ConfigError, match=r"^out='.*afile' cannot be a folder: '.*afile' is a file; choose another out$"):
        gantrain.evaluate.evaluate_checkpoint(str(tmp_path / "run"), out=str(tmp_path / "afile" / "metrics.json"))
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"eval.num_samples": "many"}, r"^eval.num_samples='many' must be a number \(the default is \d+\)$"),
        ({"eval.seed": -1}, r"^eval.seed=-1 is a seed: use an integer from 0"),
        ({"model.latent_dim": 0}, r"^model.latent_dim=0 must be a positive integer \(the default is 4\)$"),
        ({"eval.sedd": 1}, r"^eval.sedd is not a setting of this run's config$"),
    ],
)
def test_gantrain_eval_checks_its_overrides_against_the_runs_values(overrides, message, compose):
    from omegaconf import OmegaConf

    import gantrain.evaluate

    state = {"config": OmegaConf.to_container(compose([*POINTS, *QUIET]), resolve=True)}
    with pytest.raises(ConfigError, match=message):
        gantrain.evaluate.run_config(state, overrides)
    cfg = gantrain.evaluate.run_config(state, {"eval.num_samples": 100, "model.latent_dim": 8})  # good values pass
    assert (cfg.eval.num_samples, cfg.model.latent_dim) == (100, 8)
