"""configs/tuning/: settings chosen by the combination of model, loss, optimizer and dataset, for it alone."""

import itertools

import pytest
import torch

from gantrain.cli import build_family, build_optimizers, config_dir

PAPER = {"lr_g": None, "lr_d": None, "ema": 0.0, "steps": 1500}  # Radford et al.'s Adam for both networks, no EMA
DCGAN_DIGITS = {"lr_g": 8.0e-4, "lr_d": 4.0e-4, "ema": 0.999, "steps": 7500}  # `gantrain`: G at twice D's rate, EMA


def settings(cfg):
    return {"lr_g": cfg.optimizer.lr_g, "lr_d": cfg.optimizer.lr_d, "ema": cfg.trainer.ema, "steps": cfg.trainer.steps}


def regularizers(cfg) -> dict:
    """The regularizers a config builds, each with its R1 γ (None for others)."""
    return {name: getattr(reg, "gamma", None) for name, reg in getattr(build_family(cfg), "regularizers", {}).items()}


def test_the_default_command_trains_dcgan_on_digits_with_r1_and_its_tuning(compose):
    cfg = compose([])
    assert settings(cfg) == DCGAN_DIGITS
    family = build_family(cfg)
    r1 = family.regularizers["r1"]
    assert list(family.regularizers) == ["r1"] and (r1.gamma, r1.interval) == (1.0, 4)  # lazy: 4γ every 4th step
    d = family.networks["discriminator"]
    assert any(isinstance(m, torch.nn.GroupNorm) and m.num_groups == 1 for m in d.modules())  # R1's layer norm
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in d.modules())
    optimizers = build_optimizers(cfg, family, 1)
    assert {name: o.param_groups[0]["lr"] for name, o in optimizers.items()} == {"discriminator": 4.0e-4, "generator": 8.0e-4}
    assert cfg.model.discriminator.width == 32 and cfg.model.generator.width == 64  # D at half G's width


@pytest.mark.parametrize(
    "choice, built",
    [
        ("regularizer=none", {}),
        ("regularizer=spectral_norm", {"spectral_norm": None}),
        ("regularizer=r1", {"r1": 10.0}),  # the option's γ, not the tuning's 1
        ("regularizer=[spectral_norm,r1]", {"spectral_norm": None, "r1": 10.0}),
        ("loss=wgan_gp", {"gradient_penalty": None}),  # a loss that brings its regularizer
    ],
)
def test_a_regularizer_chosen_replaces_the_tuned_r1_instead_of_adding_to_it(compose, choice, built):
    assert regularizers(compose([choice])) == built


def test_the_papers_settings_are_one_override_away(compose):
    overrides = ["optimizer.lr_g=null", "optimizer.lr_d=null", "model.discriminator.width=64", "trainer.ema=0", "trainer.steps=1500"]
    cfg = compose(["regularizer=none", *overrides])
    assert settings(cfg) == PAPER and regularizers(cfg) == {} and cfg.model.discriminator.width == 64


def test_gan_int_cls_on_captioned_digits_trains_d_and_its_text_encoder_slower_with_an_ema(compose):
    cfg = compose(["model=gan_int_cls", "dataset=captioned_digits"])
    assert settings(cfg) == {"lr_g": None, "lr_d": 5.0e-5, "ema": 0.999, "steps": 2000}
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
    cfg = compose(overrides)
    assert settings(cfg) == PAPER and "r1" not in regularizers(cfg)


def test_the_command_line_beats_the_tuning(compose):
    cfg = compose(["optimizer.lr_g=1e-4", "trainer.ema=0", "trainer.steps=10", "regularizer.r1.gamma=3"])
    assert settings(cfg) == {"lr_g": 1e-4, "lr_d": 4e-4, "ema": 0.0, "steps": 10} and regularizers(cfg) == {"r1": 3.0}


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
        "lr": cfg.optimizer.lr,
        "mapping_mixing": (g.mapping_layers, g.mixing_prob),
    }


STYLEGAN_PAPER = {
    "d_steps": 5,
    "batch_size": 64,
    "steps": 1500,
    "ema": 0.0,
    "widths": (32, 256, 32, 256),
    "lambda": 10.0,
    "interval": 1,
    "lr": 1.0e-3,  # Karras et al.'s Adam
    "mapping_mixing": (8, 0.9),
}


def test_stylegan_with_wgan_gp_on_digits_trains_with_its_cpu_tuning(compose):
    """k = 1 with the penalty every 4th step (×4), half the widths, batch 32, Adam at 4e-3, 2 mapping layers and no
    style mixing, an EMA of G, 5000 steps; λ stays WGAN-GP's 10 and Adam's β Karras et al.'s."""
    cfg = compose(STYLEGAN_WGAN_GP)
    assert stylegan_settings(cfg) == {
        "d_steps": 1,
        "batch_size": 32,
        "steps": 5000,
        "ema": 0.998,
        "widths": (16, 128, 16, 128),
        "lambda": 10.0,
        "interval": 4,
        "lr": 4.0e-3,
        "mapping_mixing": (2, 0.0),
    }
    family = build_family(cfg)
    assert (
        family.regularizers["gradient_penalty"].interval == 4
        and sum(isinstance(m, torch.nn.Linear) for m in family.networks["generator"].mapping.modules()) == 2
    )
    assert list(cfg.optimizer.betas) == [0.0, 0.99]


def test_the_stylegan_tuning_files_comment_gives_the_papers_settings_back(compose):
    """The overrides the tuning file lists after "The paper's settings:" compose the configs' own settings."""
    comment = (config_dir() / "tuning" / "stylegan_wgan_gp_adam_karras_digits.yaml").read_text()
    text = " ".join(line.lstrip("# ") for line in comment.splitlines() if line.startswith("#"))
    overrides = text.split("The paper's settings:", 1)[1].split("(about", 1)[0].split()
    assert len(overrides) == 12 and stylegan_settings(compose([*STYLEGAN_WGAN_GP, *overrides])) == STYLEGAN_PAPER


@pytest.mark.parametrize("other", [["optimizer=adam_wgan_gp"], ["dataset=mnist"]])
def test_stylegan_with_wgan_gp_keeps_its_own_settings_outside_that_combination(compose, other):
    """WGAN-GP's Adam (or another dataset) leaves the tuning out: k = 5, batch 64, the configs' widths, no EMA."""
    expected = {**STYLEGAN_PAPER, "lr": 1.0e-4 if other == ["optimizer=adam_wgan_gp"] else 1.0e-3}
    assert stylegan_settings(compose([*STYLEGAN_WGAN_GP, *other])) == expected


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


def combinations_named(stem: str) -> list[tuple[str, ...]]:
    """The (model, loss, optimizer, dataset) options whose names joined by "_" give ``stem``."""
    options = [{p.stem for p in (config_dir() / group).glob("*.yaml")} for group in ("model", "loss", "optimizer", "dataset")]
    words = stem.split("_")
    found = []
    for i, j, k in itertools.combinations(range(1, len(words)), 3):
        parts = ["_".join(words[a:b]) for a, b in zip((0, i, j, k), (i, j, k, len(words)))]
        if all(part in group for part, group in zip(parts, options)):
            found.append(tuple(parts))
    return found


@pytest.mark.parametrize("path", sorted((config_dir() / "tuning").rglob("*.yaml")), ids=lambda p: p.relative_to(config_dir()).as_posix())
def test_every_tuning_file_names_one_combination_of_existing_options(path):
    """A tuning file whose name no longer spells a combination (an option renamed) would silently never apply."""
    assert len(combinations_named(path.stem)) == 1, path.stem
