"""configs/tuning/: settings chosen by the combination of model, loss, optimizer and dataset, for it alone."""

import pytest

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
