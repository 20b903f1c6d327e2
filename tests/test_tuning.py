"""configs/tuning/: settings chosen by the combination of model, loss, optimizer and dataset, for it alone."""

import pytest

from gantrain.cli import build_family, build_optimizers

PAPER = {"lr_d": None, "ema": 0.0, "steps": 1500}  # Radford et al.'s Adam for both networks, no EMA; the loop's steps


def settings(cfg):
    return {"lr_d": cfg.optimizer.lr_d, "ema": cfg.trainer.ema, "steps": cfg.trainer.steps}


def test_the_default_command_trains_dcgan_on_digits_with_its_tuning(compose):
    cfg = compose([])
    assert settings(cfg) == {"lr_d": 2.0e-5, "ema": 0.999, "steps": 2500}
    optimizers = build_optimizers(cfg, build_family(cfg), 1)
    assert optimizers["discriminator"].param_groups[0]["lr"] == 2.0e-5
    assert optimizers["generator"].param_groups[0]["lr"] == 2.0e-4  # the paper's


@pytest.mark.parametrize(
    "overrides",
    [
        ["loss=wgan_gp"],
        ["loss=hinge"],
        ["optimizer=rmsprop"],
        ["model=acgan"],
        ["model=mlp"],
        ["dataset=ring8", "model=mlp"],
        ["dataset=mnist"],
    ],
)
def test_any_other_combination_keeps_its_own_settings(compose, overrides):
    assert settings(compose(overrides)) == PAPER


def test_the_command_line_beats_the_tuning(compose):
    cfg = compose(["optimizer.lr_d=1e-4", "trainer.ema=0", "trainer.steps=10"])
    assert settings(cfg) == {"lr_d": 1e-4, "ema": 0.0, "steps": 10}


def unet_settings(cfg):
    d = cfg.model.denoiser
    return d.width, list(d.multipliers), d.blocks, list(d.attention_resolutions), cfg.model.prediction, cfg.optimizer.lr


@pytest.mark.parametrize("model", ["ddpm", "ddpm_cfg"])
def test_ddpm_on_digits_trains_the_cpu_sized_unet_and_ho_et_als_elsewhere(compose, model):
    from gantrain.models.unet import Attention

    cfg = compose([f"model={model}"])
    assert unet_settings(cfg) == (16, [1, 2, 2], 1, [], "v", 1e-3) and cfg.trainer.steps == 5000
    net = build_family(cfg).networks["denoiser"]
    assert len(net.down) == 3 + 2  # a block per resolution, two halvings: 16 → 8 → 4
    assert [m for m in net.modules() if isinstance(m, Attention)] == [net.middle[1]]  # attention in the 4×4 middle only
    assert unet_settings(compose([f"model={model}", "dataset=mnist"])) == (32, [1, 2, 2], 2, [8], "eps", 2e-4)
    overridden = compose([f"model={model}", "model.denoiser.blocks=2", "model.prediction=eps", "optimizer.lr=2e-4"])
    assert unet_settings(overridden)[2:] == (2, [], "eps", 2e-4)  # the command line beats the tuning
