"""The gantrain command: config groups compose, every valid model × dataset trains, impossible ones are refused."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gantrain.cli import config_dir, train
from gantrain.errors import ConfigError
from gantrain.resume import GROUPS

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = {group: sorted(p.stem for p in (config_dir() / group).glob("*.yaml")) for group in GROUPS}
DATASETS = ["digits", "ring8", "grid25", "image_folder", "mnist", "fashion_mnist", "cifar10"]
# What a model needs of its data; models not listed make images and need no labels. None of DATASETS has the
# fields of a translation task (their own tests train them on theirs): here they are refused in one line.
NEEDS = {
    "mlp": set(),
    "cgan": {"labels"},
    "acgan": {"image", "labels"},
    "biggan": {"image", "labels"},
    "stargan": {"image", "labels"},
    "pix2pix": {"source"},
    "cyclegan": {"source"},
    "spade": {"segmentation"},
    "context_encoder": {"mask"},
    "gan_int_cls": {"text"},
}
SMALL = {
    "stargan": ["model.generator.width=8", "model.generator.res_blocks=1", "model.discriminator.width=8"],
    "biggan": ["model.generator.width=4", "model.discriminator.width=4"],
}
FAST = ["trainer.steps=1", "trainer.batch_size=8", "trainer.num_samples=8", "trainer.log_every=1", "trainer.eval_every=0"]


def run_gantrain(*args, cwd, env=None):
    """The installed ``gantrain`` console script, as a user runs it."""
    script = Path(sys.executable).parent / "gantrain"
    return subprocess.run([str(script), *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in OPTIONS[g]])
def test_every_option_of_every_group_composes(compose, group, option):
    cfg = compose([f"{group}={option}"])
    assert cfg.trainer.steps > 0 and "_target_" in cfg.model


def _dataset_overrides(name, torchvision_root, image_folder_root):
    if name == "image_folder":
        return [f"dataset.root={image_folder_root}", "dataset.labels=true", "dataset.image_size=16", "dataset.source.holdout=0.25"]
    if name in ("mnist", "fashion_mnist", "cifar10"):
        return [f"dataset.root={torchvision_root}", "dataset.image_size=16"]
    if name in ("ring8", "grid25"):
        return ["dataset.source.n=1000"]
    return []


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("model", OPTIONS["model"])
def test_every_valid_model_dataset_pair_trains_and_every_other_is_refused(
    compose, tmp_path, model, dataset, torchvision_root, image_folder_root, cifar_files_trusted
):
    overrides = [f"model={model}", f"dataset={dataset}", *FAST, *SMALL.get(model, [])]
    cfg = compose(overrides + _dataset_overrides(dataset, torchvision_root, image_folder_root))
    if "sampling_steps" in cfg.model:  # a denoiser's preview runs this many network passes
        cfg.model.sampling_steps = 2
    has = {"image"} if cfg.dataset.kind == "image" else set()
    has |= {"labels"} if dataset != "ring8" and dataset != "grid25" else set()
    if NEEDS.get(model, {"image"}) <= has:
        logs = train(cfg, tmp_path)
        losses = [v for k, v in logs.items() if k.startswith("loss/")]
        assert losses and all(abs(v) < float("inf") for v in losses)  # logged and finite
        assert (tmp_path / "checkpoints" / "last.pt").is_file()
    else:
        with pytest.raises(ConfigError, match=rf"model={model}\b.*dataset={dataset}\b.*(points|labels|masks|does not have)"):
            train(cfg, tmp_path)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model=dcgan", "dataset=grid25"], "DCGAN makes images, but this dataset gives points"),
        (["model=cgan", "dataset=ring8"], "cgan is conditional and needs class labels"),
        (["dataset.image_size=12"], "image_size=12 is not one"),
        (["trainer.d_steps=0"], r"trainer.d_steps=0 must be a positive integer"),
        (["optimizer.lr=-1e-4"], "optimizer.lr=-0.0001 must be a positive learning rate"),
    ],
)
def test_impossible_settings_are_refused_in_one_sentence(compose, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        train(compose(overrides + FAST), tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "checkpoints").exists()


def test_help_lists_the_config_groups_and_their_options(tmp_path):
    out = run_gantrain("--help", cwd=tmp_path).stdout
    for group in GROUPS:  # "group: what it chooses (default: …)", then one row per option: its name, its description
        section = out.split(f"\n{group}: ", 1)[1].split("\n\n", 1)[0]
        assert [line.split()[0] for line in section.splitlines()[1:]] == OPTIONS[group], group


def test_cli_error_is_one_line_with_exit_code_2(tmp_path):
    result = run_gantrain("model=dcgan", "dataset=grid25", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("gantrain: error: model=dcgan with dataset=grid25")
    assert line.endswith("DCGAN makes images, but this dataset gives points: use model=mlp for 2D data")
    assert "Traceback" not in result.stdout + result.stderr


def test_unknown_option_lists_the_valid_ones(tmp_path):
    result = run_gantrain("loss=nope", cwd=tmp_path)
    assert result.returncode != 0 and "Could not find 'loss/nope'" in result.stderr
    assert all(option in result.stderr for option in OPTIONS["loss"])


def _readme_command(kind: str) -> str:
    """The README's set-up command of ``kind`` ("run" or "test"): the shell line under its heading."""
    text = (ROOT / "README.md").read_text()
    block = re.search(rf"<!-- {kind}-command -->\s*```(?:bash|sh)?\n(.+?)\n```", text, re.S)
    assert block, f"README has no {kind} command block"
    return block.group(1).strip()


def test_readme_run_command_trains_into_a_new_run_directory(tmp_path):
    command = _readme_command("run")
    assert command.endswith("&& gantrain"), command
    # the install half is what CI already did; run the other half for a few steps
    result = run_gantrain("trainer.steps=3", "trainer.sample_every=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "outputs").glob("*/*")
    assert (run_dir / "checkpoints" / "last.pt").is_file() and (run_dir / "samples" / "step_0000003.png").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "gantrain.log").is_file()
    assert list(run_dir.glob("events.out.tfevents.*"))


def test_resume_from_the_command_line_keeps_the_original_record_and_runs_only_the_remaining_steps(tmp_path):
    args = ["model=mlp", "dataset=grid25", "dataset.source.n=1000", "trainer.steps=2", "trainer.batch_size=8", "trainer.log_every=1"]
    assert run_gantrain(*args, "hydra.run.dir=run", cwd=tmp_path).returncode == 0
    original = (tmp_path / "run" / ".hydra" / "config.yaml").read_text()
    result = run_gantrain("resume=run", "trainer.steps=4", "override_resume=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / ".hydra" / "config.yaml").read_text() == original
    log = (tmp_path / "run" / "gantrain.log").read_text()
    assert re.search(r"resumed .+ at step 2\n", log), log
    first, resumed = re.split(r"resumed .+ at step 2\n", log)
    steps = [[int(n) for n in re.findall(r"step (\d+): loss/D=", part)] for part in (first, resumed)]
    assert steps == [[1, 2], [3, 4]]  # each step logged once; the resumed run's only those after its checkpoint


def test_multirun_sweep_writes_one_run_directory_per_job(tmp_path):
    result = run_gantrain(
        "-m",
        "loss=minimax,nonsaturating",
        "model=mlp",
        "dataset=grid25",
        "dataset.source.n=1000",
        "trainer.steps=2",
        "trainer.batch_size=8",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    runs = sorted(p.name for p in (tmp_path / "outputs" / "multirun").glob("*/*/*") if p.is_dir())
    assert runs == ["0_minimax", "1_nonsaturating"]  # the job number and the swept values
    assert all(next((tmp_path / "outputs" / "multirun").glob(f"*/*/{r}/checkpoints/last.pt")) for r in runs)


@pytest.mark.parametrize(
    "model,dataset,optimizer,lr,betas",
    [
        ("dcgan", "digits", "adam", 2e-4, [0.5, 0.999]),
        ("progan", "digits", "adam_karras", 1e-3, [0.0, 0.99]),
        ("stylegan", "digits", "adam_karras", 1e-3, [0.0, 0.99]),
        ("ddpm", "mnist", "adam_ddpm", 2e-4, [0.9, 0.999]),  # on digits configs/tuning/ raises its rate
    ],
)
def test_a_model_brings_its_papers_optimizer_and_the_command_line_still_wins(compose, model, dataset, optimizer, lr, betas):
    cfg = compose([f"model={model}", f"dataset={dataset}"])
    assert cfg.optimizer == compose([f"optimizer={optimizer}"]).optimizer  # exactly that option of the group
    assert (cfg.optimizer.lr, list(cfg.optimizer.betas)) == (lr, betas)
    with_wgan_gp = {"dcgan": 1e-4, "stylegan": 4e-3}.get(model, lr)  # WGAN-GP's Adam; StyleGAN's digits tuning
    assert compose([f"model={model}", f"dataset={dataset}", "loss=wgan_gp"]).optimizer.lr == with_wgan_gp
    assert compose([f"model={model}", f"dataset={dataset}", "optimizer=rmsprop"]).optimizer._target_ == "torch.optim.RMSprop"
    assert compose([f"model={model}", f"dataset={dataset}", "optimizer.lr=3e-3"]).optimizer.lr == 3e-3


def test_integer_betas_from_the_command_line_build_adam(compose):
    """``optimizer.betas=[0,0.9]`` parses the 0 as an int, which torch.optim.Adam refuses beside a float."""
    from gantrain.cli import build_family, build_optimizers

    cfg = compose(["model=mlp", "dataset=grid25", "optimizer.betas=[0,0.9]"])
    optimizers = build_optimizers(cfg, build_family(cfg), d_steps=1)
    assert {opt.param_groups[0]["betas"] for opt in optimizers.values()} == {(0.0, 0.9)}
