"""Regularizers against finite differences and their papers' definitions; combination checks; every
loss × regularizer pair training on the 2D grid."""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from gantrain import cli, losses
from gantrain.data import BatchStream
from gantrain.errors import ConfigError
from gantrain.models import dcgan, mlp
from gantrain.regularizers import (
    R1,
    WEIGHT_LAYERS,
    Drift,
    GradientPenalty,
    Orthogonal,
    SpectralNorm,
    WeightClip,
    check_combination,
    input_gradients,
)
from gantrain.trainer import Trainer

from test_losses import LOSS_OPTIONS  # every loss option, checked against configs/loss


def small_critic() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()


def critic_fn(net):
    return lambda x: net(x).squeeze(1)


def fd_gradients(f, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Central finite differences of a per-sample scalar function, coordinate by coordinate."""
    grads = torch.zeros_like(x)
    with torch.no_grad():
        for j in range(x.shape[1]):
            e = torch.zeros_like(x)
            e[:, j] = h
            grads[:, j] = (f(x + e) - f(x - e)) / (2 * h)
    return grads


POINTS = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2], [1.5, 1.0, 0.1], [-2.0, 0.7, 0.4]], dtype=torch.float64)


def test_input_gradients_match_finite_differences():
    f = critic_fn(small_critic())
    assert torch.allclose(input_gradients(f, POINTS), fd_gradients(f, POINTS), atol=1e-8)


@pytest.mark.parametrize("one_sided", [False, True])
def test_gradient_penalty_matches_finite_differences(one_sided):
    """With real = fake every interpolate is that point, so the penalty is λ·mean((‖∇D‖ − 1)²) there."""
    net = small_critic()
    with torch.no_grad():
        net[2].weight.mul_(3.0)  # slopes on both sides of 1, so the one-sided variant differs
    f = critic_fn(net)
    norms = fd_gradients(f, POINTS).norm(dim=1)
    assert (norms > 1).any() and (norms < 1).any()
    excess = (norms - 1).clamp(min=0) if one_sided else norms - 1
    expected = 10.0 * excess.pow(2).mean()
    penalty = GradientPenalty(10.0, one_sided=one_sided).discriminator_penalty(f, POINTS, POINTS.clone(), step=0)
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-7)
    lazy = GradientPenalty(10.0, one_sided=one_sided, interval=3)  # ×3 on every third step, nothing between
    assert lazy.discriminator_penalty(f, POINTS, POINTS.clone(), step=4) is None
    assert lazy.discriminator_penalty(f, POINTS, POINTS.clone(), step=6).item() == pytest.approx(3 * expected.item(), rel=1e-7)


def test_gradient_penalty_interpolates_between_real_and_fake():
    seen = []

    def recording_critic(x):
        seen.append(x.detach().clone())
        return x.sum(dim=1)

    real, fake = POINTS, POINTS.flip(0) + 3.0
    GradientPenalty().discriminator_penalty(recording_critic, real, fake, step=0)
    eps = (seen[0] - fake) / (real - fake)  # one ε per sample, shared by its coordinates, in [0, 1]
    assert torch.allclose(eps, eps[:, :1].expand_as(eps)) and ((eps >= 0) & (eps <= 1)).all()
    assert eps[:, 0].std() > 0


def test_r1_matches_finite_differences_and_is_lazy():
    f = critic_fn(small_critic())
    expected = 0.5 * 10.0 * fd_gradients(f, POINTS).pow(2).sum(dim=1).mean()
    assert R1(10.0).discriminator_penalty(f, POINTS, None, step=7).item() == pytest.approx(expected.item(), rel=1e-7)
    lazy = R1(10.0, interval=4)
    assert lazy.discriminator_penalty(f, POINTS, None, step=5) is None
    assert lazy.discriminator_penalty(f, POINTS, None, step=8).item() == pytest.approx(4 * expected.item(), rel=1e-7)


def test_r1_in_the_family_reuses_the_losss_forward_pass_and_gives_the_same_penalty():
    """With R1 the discriminator update runs D twice (real, fake), not three times, and the penalty equals R1 of
    a separate forward pass (StyleGAN2's way of computing it); on lazy steps the real batch needs no gradient."""
    from gantrain.families.gan import GANFamily

    torch.manual_seed(0)
    family = GANFamily(
        "mlp",
        mlp.Generator(2, (3,), hidden=[8]),
        mlp.Discriminator((3,), hidden=[8], pieces=1),
        losses.nonsaturating(),
        latent_dim=2,
        regularizers={"r1": R1(10.0, interval=2)},
    )
    discriminator = family.networks["discriminator"]
    calls = []
    discriminator.register_forward_hook(lambda module, args, out: calls.append(args[0].requires_grad))
    real = POINTS.float()
    _, logs = family.loss("discriminator", {"image": real}, step=4)
    assert calls == [True, False]  # D(real) differentiable in x, D(fake); no third pass
    separate = 2 * 0.5 * 10.0 * input_gradients(lambda x: discriminator(x), real).pow(2).sum(dim=1).mean()
    assert logs["penalty/r1"].item() == pytest.approx(separate.item(), rel=1e-6)
    calls.clear()
    _, logs = family.loss("discriminator", {"image": real}, step=5)
    assert calls == [False, False] and "penalty/r1" not in logs


def test_drift_penalty_is_its_formula_and_centres_a_wasserstein_critic():
    """ε E_data[D(x)²] on real data only; the WGAN loss ignores a constant added to D, the drift term fixes it:
    gradient descent on the critic's bias alone drives the mean real output to 0."""
    f = critic_fn(small_critic())
    expected = 0.001 * f(POINTS).pow(2).mean()
    assert Drift().discriminator_penalty(f, POINTS, POINTS + 5.0, step=0).item() == pytest.approx(expected.item(), rel=1e-7)
    bias = torch.tensor(3.0, requires_grad=True)
    fake = POINTS + 1.0
    critic = lambda x: x.sum(dim=1) + bias  # noqa: E731
    opt = torch.optim.SGD([bias], lr=50.0)
    for _ in range(200):
        opt.zero_grad()
        loss = losses.wgan().discriminator(critic(POINTS), critic(fake)) + Drift(0.001).discriminator_penalty(critic, POINTS, fake, 0)
        loss.backward()
        opt.step()
    assert critic(POINTS).mean().item() == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("penalty", [GradientPenalty(10.0), R1(10.0)], ids=["gradient_penalty", "r1"])
def test_penalties_train_the_discriminator_through_double_backprop(penalty):
    """d(penalty)/d(a weight of D) from autograd equals the finite difference in that weight."""
    net = small_critic()
    f = critic_fn(net)
    value = penalty.discriminator_penalty(f, POINTS, POINTS.clone(), step=0)
    value.backward()
    weight, h = net[0].weight, 1e-6
    values = []
    for shift in (h, -2 * h):  # the penalty itself needs autograd (∇ₓD), so only the weight edit is no_grad
        with torch.no_grad():
            weight[1, 2] += shift
        values.append(penalty.discriminator_penalty(f, POINTS, POINTS.clone(), step=0).item())
    assert weight.grad[1, 2].item() == pytest.approx((values[0] - values[1]) / (2 * h), rel=1e-5)


def networks(pieces: int = 5):
    torch.manual_seed(0)
    return {
        "generator": mlp.Generator(4, [2], hidden=[16, 16], bounded=False),
        "discriminator": mlp.Discriminator([2], hidden=[16, 16], pieces=pieces),
    }


def test_weight_clip_clamps_the_discriminator_after_its_update_only():
    nets = networks()
    with torch.no_grad():
        for net in nets.values():
            for p in net.parameters():
                p.mul_(100)
    before = [p.clone() for p in nets["generator"].parameters()]
    clip = WeightClip(0.01)
    clip.after_update("generator", nets)
    assert max(p.abs().max().item() for p in nets["discriminator"].parameters()) > 0.01
    clip.after_update("discriminator", nets)
    assert max(p.abs().max().item() for p in nets["discriminator"].parameters()) <= 0.01
    assert all(torch.equal(a, b) for a, b in zip(before, nets["generator"].parameters()))


@pytest.mark.parametrize("on_generator", [False, True])
def test_spectral_norm_makes_each_layer_1_lipschitz(on_generator):
    torch.manual_seed(0)
    nets = {
        "generator": dcgan.Generator(8, channels=1, image_size=8, width=8),
        "discriminator": dcgan.Discriminator(channels=1, image_size=8, width=8, norm="none"),
    }
    SpectralNorm(generator=on_generator).setup(nets)
    for _ in range(30):  # one power iteration per training forward pass
        nets["discriminator"](torch.randn(4, 1, 8, 8))
        nets["generator"](torch.randn(4, 8))
    for name, net in nets.items():
        layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        parametrized = [hasattr(m, "parametrizations") for m in layers]
        assert all(parametrized) if (name == "discriminator" or on_generator) else not any(parametrized)
        for m in layers:
            if hasattr(m, "parametrizations"):
                w = m.weight.transpose(0, 1) if isinstance(m, nn.ConvTranspose2d) else m.weight
                assert torch.linalg.matrix_norm(w.detach().flatten(1), ord=2).item() == pytest.approx(1.0, abs=0.02)


def test_orthogonal_penalty_is_biggans_off_diagonal_gram():
    g = nn.Sequential(nn.Linear(3, 2, bias=False), nn.ConvTranspose2d(2, 3, 1, bias=False))
    with torch.no_grad():
        g[0].weight.copy_(torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]]))  # filters (rows) with dot product 2
        g[1].weight.copy_(torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]).view(2, 3, 1, 1))  # 3 filters of size 2
    reg = Orthogonal(1e-4)
    reg.setup({"generator": g})
    # Linear: 2 off-diagonal entries of 2 → 8; ConvTranspose filters (1,0), (0,1), (1,1): dots 0, 1, 1 → 2·(0+1+1) = 4
    assert reg.generator_penalty(g, step=0).item() == pytest.approx(1e-4 * (8 + 4))
    with torch.no_grad():
        g[0].weight.copy_(torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 5.0]]))  # orthogonal, not orthonormal
        g[1].weight.copy_(torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).view(2, 3, 1, 1))
    assert reg.generator_penalty(g, step=0).item() == 0.0


def test_a_gradient_penalty_swaps_batch_norm_for_layer_norm(caplog):
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO):
        nets = {"discriminator": dcgan.Discriminator(channels=1, image_size=16, width=8, norm="batch")}
        GradientPenalty().setup(nets)
    assert "batch norm" in caplog.text and "layer norm" in caplog.text
    kinds = {type(m) for m in nets["discriminator"].modules()}
    assert nn.BatchNorm2d not in kinds and nn.GroupNorm in kinds
    caplog.clear()
    with caplog.at_level(logging.INFO):
        R1().setup({"discriminator": dcgan.Discriminator(channels=1, image_size=16, width=8, norm="layer")})
    assert caplog.text == ""


def test_a_wasserstein_loss_without_lipschitz_constraint_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING):
        check_combination(losses.wgan(), {})
        check_combination(losses.wgan(), {"r1": R1()})
    assert caplog.text.count("1-Lipschitz") == 2
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        for lipschitz in (WeightClip(), GradientPenalty(), SpectralNorm()):
            check_combination(losses.wgan(), {"r1": R1(), "x": lipschitz})
        check_combination(losses.nonsaturating(), {})
    assert caplog.text == ""


def test_clipping_and_spectral_norm_on_the_same_weights_are_refused(compose):
    with pytest.raises(ValueError, match="weight_clip and spectral_norm both constrain the discriminator"):
        check_combination(losses.wgan(), {"weight_clip": WeightClip(), "spectral_norm": SpectralNorm()})
    cfg = compose(["model=mlp", "dataset=grid25", "regularizer=[weight_clip,spectral_norm]"])
    with pytest.raises(ConfigError, match="contradict"):
        cli.build_family(cfg)


def test_bad_regularizer_settings_are_refused():
    for make in (
        lambda: WeightClip(0),
        lambda: GradientPenalty(-1),
        lambda: GradientPenalty(interval=0),
        lambda: R1(interval=0),
        lambda: Orthogonal(0),
        lambda: Drift(0),
        lambda: SpectralNorm(power_iterations=0),
    ):
        with pytest.raises(ValueError, match="regularizer\\."):
            make()


def test_dcgan_with_wgan_gp_just_works(compose, tmp_path):
    cfg = compose(
        [
            "model=dcgan",
            "loss=wgan_gp",
            "trainer.steps=1",
            "trainer.batch_size=8",
            "trainer.log_every=1",
            "trainer.sample_every=100",
            "trainer.checkpoint_every=100",
            "trainer.num_samples=4",
            "trainer.eval_every=0",
            "model.generator.width=8",
            "model.discriminator.width=8",
        ]
    )
    logs = cli.train(cfg, tmp_path / "run")
    assert math.isfinite(logs["loss/D"]) and logs["penalty/gradient_penalty"] > 0


# ------------------------------------------------------------------ every loss × regularizer on grid25
LOSSES = LOSS_OPTIONS
REGULARIZERS = ["none", "weight_clip", "gradient_penalty", "r1", "spectral_norm", "orthogonal", "drift"]
WASSERSTEIN = {"wgan", "wgan_gp"}
LIPSCHITZ = {"weight_clip", "gradient_penalty", "spectral_norm"}
PENALIZED = {"gradient_penalty": "discriminator", "r1": "discriminator", "drift": "discriminator", "orthogonal": "generator"}


GRID = ["model=mlp", "dataset=grid25", "dataset.source.n=5000", "trainer.batch_size=64"]
_composed: dict[tuple, object] = {}


def composed(compose, overrides):
    """compose(overrides), cached (composing costs far more than a few small steps); a fresh copy each call."""
    key = tuple(overrides)
    if key not in _composed:
        _composed[key] = compose(list(overrides))
    return copy.deepcopy(_composed[key])


def train_pair(cfg, run_dir: Path, steps: int) -> tuple[nn.Module, list]:
    """``steps`` training steps of ``cfg`` through the real loop (Trainer.train_step; no previews, checkpoints
    or evaluation). Returns the family and each update of the last step as (phase, loss minimized, logged terms)."""
    bundle = cli.build_data(cfg)
    family = cli.build_family(cfg)
    optimizers = cli.build_optimizers(cfg, family, cfg.trainer.d_steps)
    stream = BatchStream(bundle.train, cfg.trainer.batch_size, seed=cfg.seed)
    trainer = Trainer(family, stream, optimizers, run_dir, steps=steps, d_steps=cfg.trainer.d_steps)
    updates, family_loss = [], family.loss

    def recorded_loss(phase, batch, step):
        loss, terms = family_loss(phase, batch, step)
        updates.append((phase, loss.detach(), terms))
        return loss, terms

    family.loss = recorded_loss
    for _ in range(steps):
        updates.clear()
        trainer.train_step()
    return family, updates


def check_regularizer_acts(family, updates, regularizer: str, finite: bool, sn_slack: float) -> None:
    """Its penalty is logged in its own phase only, positive and part of the loss that phase minimized;
    weight clipping leaves every D parameter within ±c; spectral norm leaves every D layer of norm σ in
    [1, 1 + sn_slack]: W / u·Wv with unit u, v has σ ≥ 1, and one power iteration per pass lags behind σ(W)
    when the top singular values are close, as training a Wasserstein critic makes them."""
    for phase, loss, terms in updates:
        penalties = {k: v for k, v in terms.items() if k.startswith("penalty/")}
        assert set(penalties) == ({f"penalty/{regularizer}"} if PENALIZED.get(regularizer) == phase else set()), (phase, terms)
        if finite:
            assert all(v.item() > 0 for v in penalties.values()), penalties
            adversarial = terms["loss/D" if phase == "discriminator" else "loss/G"]
            assert loss.item() == pytest.approx((adversarial + sum(penalties.values())).item(), rel=1e-6), (phase, terms)
    discriminator = family.networks["discriminator"]
    if regularizer == "weight_clip":
        clip = family.regularizers["weight_clip"].clip
        assert max(p.abs().max().item() for p in discriminator.parameters()) <= clip
    if regularizer == "spectral_norm":
        layers = [m for m in discriminator.modules() if isinstance(m, WEIGHT_LAYERS)]
        assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
        discriminator.eval()  # W / σ from the training passes' power iterations, without running one more
        with torch.no_grad():
            sigmas = [torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).item() for m in layers]
        assert all(1 - 1e-4 <= s <= 1 + sn_slack for s in sigmas), sigmas  # without SN: σ 0.6 to 15


def check_pair(cfg, run_dir, caplog, loss, regularizer, steps, sn_slack):
    with caplog.at_level(logging.WARNING, logger="gantrain"):
        family, updates = train_pair(cfg, run_dir, steps)
    warned = "1-Lipschitz" in caplog.text
    assert warned == (loss in WASSERSTEIN and regularizer not in LIPSCHITZ)
    logs = {k: v.item() for _, _, terms in updates for k, v in terms.items()}
    losses_finite = all(math.isfinite(v) for v in logs.values()) and all(math.isfinite(total.item()) for _, total, _ in updates)
    finite = losses_finite and all(torch.isfinite(p).all() for p in family.parameters())
    if not warned:  # a warned combination may diverge; the user was told why
        assert finite, logs
    check_regularizer_acts(family, updates, regularizer, finite, sn_slack)


@pytest.mark.parametrize("regularizer", REGULARIZERS)
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_and_regularizer_pair_runs(compose, tmp_path, caplog, loss, regularizer):
    """A few steps with small networks: every pair builds, steps and stays finite (or is warned about). The
    regularizer node is swapped into the loss's composed config, as `regularizer=...` on the command line
    would (test_losses.py checks that the command line beats a preset)."""
    small = ["model.generator.hidden=[32,32]", "model.discriminator.hidden=[32,32]", "trainer.d_steps=1"]
    cfg = composed(compose, [*GRID, *small, f"loss={loss}"])
    cfg.regularizer = composed(compose, [f"regularizer={regularizer}"]).regularizer
    check_pair(cfg, tmp_path, caplog, loss, regularizer, steps=3, sn_slack=0.01)  # measured: σ ≤ 1.0003


@pytest.mark.slow
@pytest.mark.parametrize("regularizer", REGULARIZERS)
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_and_regularizer_pair_trains_300_steps(compose, tmp_path, caplog, loss, regularizer):
    """The issue's criterion: 300 steps of the default mlp GAN on grid25 without NaN, or a warning."""
    cfg = compose([*GRID, f"loss={loss}", f"regularizer={regularizer}"])
    check_pair(cfg, tmp_path, caplog, loss, regularizer, steps=300, sn_slack=0.25)  # σ ≤ 1.15 (wgan), else ≤ 1.001
