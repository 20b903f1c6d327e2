"""Adversarial losses on hand-made discriminator outputs, against the papers' formulas; their config presets."""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate

from gantrain import losses
from gantrain.losses import F_DIVERGENCES, GANLoss

REAL = [2.0, -0.5, 0.25]  # D's raw outputs on a real batch
FAKE = [0.3, -1.5, 1.25]  # … and on a generated one
real, fake = torch.tensor(REAL), torch.tensor(FAKE)


def mean(values):
    return sum(values) / len(values)


def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def test_minimax_and_nonsaturating_are_goodfellows_log_losses():
    d = -mean([math.log(sigmoid(r)) for r in REAL]) - mean([math.log(1 - sigmoid(f)) for f in FAKE])
    assert losses.minimax_discriminator(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert losses.minimax_generator(fake).item() == pytest.approx(mean([math.log(1 - sigmoid(f)) for f in FAKE]), rel=1e-6)
    assert losses.nonsaturating_generator(fake).item() == pytest.approx(-mean([math.log(sigmoid(f)) for f in FAKE]), rel=1e-6)


# Eq. 9's 0/1/1 and two targets of Theorem 1 (b − c = 1, b − a = 2); the last one moves b off 1
@pytest.mark.parametrize("a,b,c", [(0.0, 1.0, 1.0), (-1.0, 1.0, 0.0), (0.0, 2.0, 1.0)])
def test_lsgan_is_mao_eq2(a, b, c):
    loss = losses.lsgan(a, b, c)
    d = 0.5 * mean([(r - b) ** 2 for r in REAL]) + 0.5 * mean([(f - a) ** 2 for f in FAKE])
    g = 0.5 * mean([(f - c) ** 2 for f in FAKE])
    assert loss.discriminator(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert loss.generator(fake, real).item() == pytest.approx(g, rel=1e-6)


def test_hinge_is_the_sngan_form():
    loss = losses.hinge()
    d = mean([max(0.0, 1 - r) for r in REAL]) + mean([max(0.0, 1 + f) for f in FAKE])
    assert loss.discriminator(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert loss.generator(fake, real).item() == pytest.approx(-mean(FAKE), rel=1e-6)


def test_wgan_is_a_difference_of_means():
    loss = losses.wgan()
    assert loss.discriminator(real, fake).item() == pytest.approx(mean(FAKE) - mean(REAL), rel=1e-6)
    assert loss.generator(fake, real).item() == pytest.approx(-mean(FAKE), rel=1e-6)
    assert loss.lipschitz and not losses.hinge().lipschitz


def test_relativistic_average_compares_with_the_other_batchs_mean():
    loss = losses.relativistic()
    assert loss.generator_uses_real
    mr, mf = mean(REAL), mean(FAKE)
    d = -mean([math.log(sigmoid(r - mf)) for r in REAL]) - mean([math.log(1 - sigmoid(f - mr)) for f in FAKE])
    g = -mean([math.log(sigmoid(f - mr)) for f in FAKE]) - mean([math.log(1 - sigmoid(r - mf)) for r in REAL])
    assert loss.discriminator(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert loss.generator(fake, real).item() == pytest.approx(g, rel=1e-6)


# Nowozin et al. (2016), Table 2, written naively: (g_f(v), f*(t)). The module's stable forms must agree.
TABLE2 = {
    "kl": (lambda v: v, lambda t: math.exp(t - 1)),
    "reverse_kl": (lambda v: -math.exp(-v), lambda t: -1 - math.log(-t)),
    "pearson": (lambda v: v, lambda t: t * t / 4 + t),
    "squared_hellinger": (lambda v: 1 - math.exp(-v), lambda t: t / (1 - t)),
    "js": (lambda v: math.log(2) - math.log(1 + math.exp(-v)), lambda t: -math.log(2 - math.exp(t))),
    "gan": (lambda v: -math.log(1 + math.exp(-v)), lambda t: -math.log(1 - math.exp(t))),
}


@pytest.mark.parametrize("name", sorted(TABLE2))
def test_fgan_activation_and_conjugate_match_table2(name):
    activation, conjugate = TABLE2[name]
    v = torch.linspace(-3, 3, 13, dtype=torch.float64)
    div = F_DIVERGENCES[name]
    assert div.activation(v).tolist() == pytest.approx([activation(x) for x in v.tolist()], rel=1e-9, abs=1e-12)
    assert div.conjugate(v).tolist() == pytest.approx([conjugate(activation(x)) for x in v.tolist()], rel=1e-9, abs=1e-12)
    d = mean([activation(r) for r in REAL]) - mean([conjugate(activation(f)) for f in FAKE])
    real64, fake64 = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    assert losses.fgan_discriminator(real64, fake64, name).item() == pytest.approx(-d, rel=1e-9)
    loss = losses.fgan(name)
    assert loss.generator(fake64).item() == pytest.approx(-mean([activation(f) for f in FAKE]), rel=1e-9)
    saddle = losses.fgan(name, saddle=True)
    assert saddle.generator(fake64).item() == pytest.approx(-mean([conjugate(activation(f)) for f in FAKE]), rel=1e-9)


@pytest.mark.parametrize("name", ["reverse_kl", "js", "gan"])
def test_fgan_stable_forms_stay_finite_where_the_naive_ones_overflow(name):
    v = torch.tensor([-100.0, 100.0])
    div = F_DIVERGENCES[name]
    assert torch.isfinite(div.activation(v[1:])).all() and torch.isfinite(div.conjugate(v)).all()


def test_fgan_gan_is_the_original_gan():
    """Table 2's "GAN" row gives back Goodfellow et al.'s losses: D's exactly, G's as non-saturating (§3.2
    update) or minimax (saddle)."""
    assert losses.fgan("gan").discriminator(real, fake).item() == pytest.approx(losses.minimax_discriminator(real, fake).item())
    assert losses.fgan("gan").generator(fake).item() == pytest.approx(losses.nonsaturating_generator(fake).item())
    assert losses.fgan("gan", saddle=True).generator(fake).item() == pytest.approx(losses.minimax_generator(fake).item())


def test_fgan_refuses_an_unknown_divergence():
    with pytest.raises(ValueError, match="loss.divergence='tv'"):
        losses.fgan("tv")


LOSS_OPTIONS = [
    "minimax",
    "nonsaturating",
    "lsgan",
    "wgan",
    "wgan_gp",
    "hinge",
    "relativistic",
    "fgan_kl",
    "fgan_reverse_kl",
    "fgan_pearson",
    "fgan_squared_hellinger",
    "fgan_js",
    "fgan_gan",
]


def test_every_loss_option_has_a_config_and_builds(compose):
    from gantrain.cli import config_dir

    assert sorted(p.stem for p in (config_dir() / "loss").glob("*.yaml")) == sorted(LOSS_OPTIONS)
    for option in LOSS_OPTIONS:
        assert isinstance(instantiate(compose([f"loss={option}"]).loss), GANLoss), option


def test_wgan_presets_bring_their_companions(compose):
    cfg = compose(["loss=wgan"])
    assert list(cfg.regularizer) == ["weight_clip"] and cfg.regularizer.weight_clip.clip == 0.01
    assert cfg.optimizer._target_ == "torch.optim.RMSprop" and cfg.optimizer.lr == 5e-5 and cfg.trainer.d_steps == 5
    cfg = compose(["loss=wgan_gp"])
    assert list(cfg.regularizer) == ["gradient_penalty"] and cfg.regularizer.gradient_penalty.weight == 10
    assert cfg.optimizer._target_ == "torch.optim.Adam" and cfg.optimizer.lr == 1e-4
    assert list(cfg.optimizer.betas) == [0.0, 0.9] and cfg.trainer.d_steps == 5
    assert compose([]).trainer.d_steps == 1  # the presets change nothing for other losses


def test_the_command_line_beats_a_preset(compose):
    cfg = compose(["loss=wgan_gp", "trainer.d_steps=2", "regularizer=r1", "optimizer.lr=3e-4"])
    assert cfg.trainer.d_steps == 2 and list(cfg.regularizer) == ["r1"] and cfg.optimizer.lr == 3e-4
    cfg = compose(["loss=wgan_gp", "optimizer=sgd", "regularizer=[spectral_norm,r1]", "regularizer.r1.gamma=1"])
    assert cfg.optimizer._target_ == "torch.optim.SGD" and "betas" not in cfg.optimizer
    assert list(cfg.regularizer) == ["spectral_norm", "r1"] and cfg.regularizer.r1.gamma == 1
    assert dict(compose(["loss=wgan", "regularizer=none"]).regularizer) == {}
