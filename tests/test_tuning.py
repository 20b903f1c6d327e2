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


def infogan_settings(cfg):
    d = cfg.model.discriminator
    optimizer = {"lr_g": cfg.optimizer.lr_g, "lr_d": cfg.optimizer.lr_d}
    return {
        "batch_size": cfg.trainer.batch_size,
        "q_with_generator": cfg.model.q_with_generator,
        "continuous_weight": cfg.model.continuous_weight,
        **optimizer,
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


def test_infogan_on_digits_trains_with_smaller_batches_and_q_in_gs_phase_too(compose):
    cfg = compose(["model=infogan"])
    assert infogan_settings(cfg) == {**INFOGAN_OFFICIAL, "batch_size": 64, "q_with_generator": True, "continuous_weight": 0.5}
    assert build_family(cfg).phase("generator").networks == ("generator", "q_head")


@pytest.mark.parametrize("overrides", [["dataset=mnist"], ["dataset=fashion_mnist"], ["loss=hinge"]])
def test_infogan_elsewhere_keeps_the_official_settings(compose, overrides):
    cfg = compose(["model=infogan", *overrides])
    assert infogan_settings(cfg) == INFOGAN_OFFICIAL


def test_the_official_infogan_settings_are_one_override_away_on_digits(compose):
    cfg = compose(["model=infogan", "trainer.batch_size=128", "model.q_with_generator=false", "model.continuous_weight=1"])
    assert infogan_settings(cfg) == INFOGAN_OFFICIAL
