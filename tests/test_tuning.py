"""configs/tuning/: settings chosen by the combination of model, loss, optimizer and dataset, for it alone."""

import pytest
import torch

from gantrain.cli import build_family, build_optimizers

PAPER = {"lr_d": None, "ema": 0.0, "steps": 1500}  # Radford et al.'s Adam for both networks, no EMA; the loop's steps


def settings(cfg):
    return {"lr_d": cfg.optimizer.lr_d, "ema": cfg.trainer.ema, "steps": cfg.trainer.steps}


def test_the_default_command_trains_dcgan_on_digits_with_its_tuning(compose):
    cfg = compose([])
    assert settings(cfg) == {"lr_d": 2.0e-5, "ema": 0.999, "steps": 3500}
    optimizers = build_optimizers(cfg, build_family(cfg), 1)
    assert optimizers["discriminator"].param_groups[0]["lr"] == 2.0e-5
    assert optimizers["generator"].param_groups[0]["lr"] == 2.0e-4  # the paper's


@pytest.mark.parametrize("dataset", [[], ["dataset=mnist"]])
def test_the_dcgan_r1_preset_trains_r1_on_a_layer_normed_d_at_the_papers_rate_and_g_at_twice_it(compose, dataset):
    """experiment=dcgan_r1: R1 (γ = 1) alone, layer norm in D, D at 2e-4 (beating the digits tuning's 2e-5), G at
    4e-4, an EMA of G, 3300 steps — on digits and elsewhere alike."""
    cfg = compose(["experiment=dcgan_r1", *dataset])
    assert settings(cfg) == {"lr_d": 2.0e-4, "ema": 0.999, "steps": 3300}
    family = build_family(cfg)
    assert list(family.regularizers) == ["r1"] and family.regularizers["r1"].gamma == 1.0
    d = family.networks["discriminator"]
    assert any(isinstance(m, torch.nn.GroupNorm) and m.num_groups == 1 for m in d.modules())  # layer norm
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in d.modules())
    optimizers = build_optimizers(cfg, family, 1)
    assert {name: o.param_groups[0]["lr"] for name, o in optimizers.items()} == {"discriminator": 2.0e-4, "generator": 4.0e-4}


def test_gan_int_cls_on_captioned_digits_trains_d_and_its_text_encoder_slower_with_an_ema(compose):
    cfg = compose(["model=gan_int_cls", "dataset=captioned_digits"])
    assert settings(cfg) == {"lr_d": 5.0e-5, "ema": 0.999, "steps": 2000}
    family = build_family(cfg)
    optimizers = build_optimizers(cfg, family, 1)
    assert {name: o.param_groups[0]["lr"] for name, o in optimizers.items()} == {"discriminator": 5.0e-5, "generator": 2.0e-4}
    encoder = {id(p) for p in family.networks["text_encoder"].parameters()}
    assert encoder <= {id(p) for g in optimizers["discriminator"].param_groups for p in g["params"]}


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
        ["model=gan_int_cls", "dataset=captioned_digits", "loss=hinge"],
        ["model=gan_int_cls", "dataset=captioned_digits", "optimizer=rmsprop"],
    ],
)
def test_any_other_combination_keeps_its_own_settings(compose, overrides):
    assert settings(compose(overrides)) == PAPER


def test_the_command_line_beats_the_tuning(compose):
    cfg = compose(["optimizer.lr_d=1e-4", "trainer.ema=0", "trainer.steps=10"])
    assert settings(cfg) == {"lr_d": 1e-4, "ema": 0.0, "steps": 10}


STYLEGAN_WGAN_GP = ["model=stylegan", "loss=wgan_gp"]


def stylegan_settings(cfg):
    g, d = cfg.model.generator, cfg.model.discriminator
    return {
        "d_steps": cfg.trainer.d_steps,
        "batch_size": cfg.trainer.batch_size,
        "steps": cfg.trainer.steps,
        "ema": cfg.trainer.ema,
        "widths": (g.width, g.max_width, d.width, d.max_width),
        "lambda": cfg.regularizer.gradient_penalty.weight,
        "interval": cfg.regularizer.gradient_penalty.interval,
    }


def test_stylegan_with_wgan_gp_on_digits_trains_with_its_cpu_tuning(compose):
    """k = 2 with the penalty every other step (×2), half the widths, batch 32, 2100 steps; λ stays WGAN-GP's 10."""
    cfg = compose(STYLEGAN_WGAN_GP)
    assert stylegan_settings(cfg) == {
        "d_steps": 2,
        "batch_size": 32,
        "steps": 2100,
        "ema": 0.0,
        "widths": (16, 128, 16, 128),
        "lambda": 10.0,
        "interval": 2,
    }
    assert build_family(cfg).regularizers["gradient_penalty"].interval == 2
    assert cfg.optimizer.lr == 1.0e-3 and list(cfg.optimizer.betas) == [0.0, 0.99]  # Karras et al.'s Adam


@pytest.mark.parametrize("other", [["optimizer=adam_wgan_gp"], ["dataset=mnist"]])
def test_stylegan_with_wgan_gp_keeps_its_own_settings_outside_that_combination(compose, other):
    """WGAN-GP's Adam (or another dataset) leaves the tuning out: k = 5, batch 64, the configs' widths, no EMA."""
    assert stylegan_settings(compose([*STYLEGAN_WGAN_GP, *other])) == {
        "d_steps": 5,
        "batch_size": 64,
        "steps": 1500,
        "ema": 0.0,
        "widths": (32, 256, 32, 256),
        "lambda": 10.0,
        "interval": 1,
    }


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


def infogan_settings(cfg):
    d = cfg.model.discriminator
    return {
        "batch_size": cfg.trainer.batch_size,
        "q_with_generator": cfg.model.q_with_generator,
        "continuous_weight": cfg.model.continuous_weight,
        "lr_g": cfg.optimizer.lr_g,
        "lr_d": cfg.optimizer.lr_d,
        "width": d.width,
        "slope": d.slope,
    }


INFOGAN_OFFICIAL = {
    "batch_size": 128,
    "q_with_generator": False,
    "continuous_weight": 1.0,
    "lr_g": 1.0e-3,
    "lr_d": 2.0e-4,
    "width": 1.0,
    "slope": 0.01,
}  # openai/InfoGAN's
INFOGAN_DEFAULT = {**INFOGAN_OFFICIAL, "q_with_generator": True}  # model=infogan: Q updated with G too (Eq. 5)


def test_infogan_on_digits_trains_with_smaller_batches_and_q_in_gs_phase_too(compose):
    cfg = compose(["model=infogan"])
    assert infogan_settings(cfg) == {**INFOGAN_DEFAULT, "batch_size": 64, "continuous_weight": 0.5}
    assert build_family(cfg).phase("generator").networks == ("generator", "q_head")


@pytest.mark.parametrize("overrides", [["dataset=mnist"], ["dataset=fashion_mnist"], ["loss=hinge"]])
def test_infogan_elsewhere_keeps_the_model_configs_settings(compose, overrides):
    cfg = compose(["model=infogan", *overrides])
    assert infogan_settings(cfg) == INFOGAN_DEFAULT


def test_the_official_infogan_settings_are_one_override_away_on_digits(compose):
    cfg = compose(["model=infogan", "trainer.batch_size=128", "model.q_with_generator=false", "model.continuous_weight=1"])
    assert infogan_settings(cfg) == INFOGAN_OFFICIAL
