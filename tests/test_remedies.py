"""Mode-collapse remedies of the GAN family: PacGAN packing (Lin et al. 2018), minibatch discrimination
(Salimans et al. 2016, §3.2) and the minibatch standard deviation (Karras et al. 2018, §3)."""

import math

import pytest
import torch

from gantrain.cli import build_data, build_family, train
from gantrain.errors import ConfigError
from gantrain.families.gan import GANFamily
from gantrain.losses import nonsaturating
from gantrain.models import dcgan, mlp
from gantrain.models.layers import MinibatchDiscrimination, MinibatchStdDev
from gantrain.regularizers import Regularizer

SMALL_MLP = [
    "model=mlp",
    "dataset=ring8",
    "dataset.source.n=512",
    "model.latent_dim=8",
    "model.generator.hidden=[16,16]",
    "model.discriminator.hidden=[16,16]",
]


def record_inputs(module):
    seen = []
    module.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach().clone()))
    return seen


def record_outputs(module):
    seen = []
    module.register_forward_hook(lambda _, args, out: seen.append(out.detach().clone()))
    return seen


# ------------------------------------------------------------------------------------------ packing
@pytest.mark.parametrize("m", [2, 3, 4])
def test_packing_gives_d_m_samples_per_decision_and_n_over_m_decisions(compose, m):
    cfg = compose(SMALL_MLP + [f"model.pack={m}"])
    build_data(cfg)
    family = build_family(cfg)
    n = 12
    real = torch.randn(n, 2)
    d_inputs = record_inputs(family.networks["discriminator"])
    d_outputs = record_outputs(family.networks["discriminator"])
    fakes = record_outputs(family.networks["generator"])
    family.loss("discriminator", {"image": real}, 0)
    real_in, fake_in = d_inputs
    assert real_in.shape == fake_in.shape == (n // m, 2 * m)
    assert [o.shape for o in d_outputs] == [(n // m,), (n // m,)]
    # row k holds samples km … km+m-1 side by side: real with real, generated with generated
    for k in range(n // m):
        assert torch.equal(real_in[k], torch.cat(list(real[k * m : (k + 1) * m])))
        assert torch.equal(fake_in[k], torch.cat(list(fakes[0][k * m : (k + 1) * m])))
    family.loss("generator", {"image": real}, 0)
    assert d_inputs[2].shape == (n // m, 2 * m) and torch.equal(d_inputs[2], fakes[1].reshape(n // m, 2 * m))


def test_packed_images_are_stacked_along_channels():
    family = GANFamily(
        "dcgan", dcgan.Generator(8, 1, 16, width=8), dcgan.Discriminator(1, 16, width=8, pack=2), nonsaturating(), latent_dim=8, pack=2
    )
    real = torch.randn(6, 1, 16, 16)
    d_inputs = record_inputs(family.networks["discriminator"])
    loss, _ = family.loss("discriminator", {"image": real}, 0)
    assert d_inputs[0].shape == (3, 2, 16, 16) and torch.equal(d_inputs[0][1], real[2:4, 0])
    assert torch.isfinite(loss)


def test_regularizers_see_the_packed_batches_and_critic():
    class Probe(Regularizer):
        def discriminator_penalty(self, critic, real, fake, step, real_outputs=None):
            self.shapes = (real.shape, fake.shape, critic(real).shape)
            assert torch.equal(real_outputs, critic(real))  # the loss's own D(real)
            return critic(real).square().mean()

    probe = Probe()
    family = GANFamily(
        "mlp",
        mlp.Generator(4, (2,), hidden=[8]),
        mlp.Discriminator((2,), hidden=[8], pack=4),
        nonsaturating(),
        latent_dim=4,
        regularizers={"probe": probe},
        pack=4,
    )
    _, logs = family.loss("discriminator", {"image": torch.randn(16, 2)}, 0)
    assert probe.shapes == ((4, 8), (4, 8), (4,)) and "penalty/probe" in logs


def test_batch_not_divisible_by_pack_is_refused_before_any_update(compose, quick, tmp_path):
    cfg = compose(SMALL_MLP + quick + ["model.pack=3", "trainer.batch_size=16"])
    with pytest.raises(ConfigError, match="batch of 16 samples cannot be packed by model.pack=3.*divisible by 3"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_packing_a_conditional_gan_is_refused():
    with pytest.raises(ValueError, match="PacGAN packing is for unconditional GANs, and cgan is conditional"):
        GANFamily(
            "cgan",
            mlp.Generator(4, (2,), num_classes=3),
            mlp.Discriminator((2,), num_classes=3, pack=2),
            nonsaturating(),
            latent_dim=4,
            condition="label",
            num_classes=3,
            pack=2,
        )


def test_a_pack_below_one_is_refused_by_the_cli_in_one_sentence(compose):
    cfg = compose(SMALL_MLP + ["model.pack=0"])
    build_data(cfg)
    with pytest.raises(ConfigError, match="pack=0"):
        build_family(cfg)


def test_a_discriminator_built_for_another_pack_is_refused():
    with pytest.raises(ValueError, match="pack=2 but the discriminator is built for pack=1"):
        GANFamily("mlp", mlp.Generator(4, (2,)), mlp.Discriminator((2,)), nonsaturating(), latent_dim=4, pack=2)


# ------------------------------------------------------------------------------------------ minibatch features
def test_minibatch_discrimination_matches_its_closed_form():
    # A = B = C = 1 and T = 1: M_i = x_i, o_i = Σ_j exp(−|x_i − x_j|) (j = i included)
    layer = MinibatchDiscrimination(1, 1, 1)
    with torch.no_grad():
        layer.T.fill_(1.0)
    x = torch.tensor([[0.0], [1.0], [3.0]])
    e = math.exp
    expected = [1 + e(-1) + e(-3), e(-1) + 1 + e(-2), e(-3) + e(-2) + 1]
    out = layer(x)
    assert out.shape == (3, 2) and torch.equal(out[:, 0], x[:, 0])
    assert out[:, 1].tolist() == pytest.approx(expected)


def test_minibatch_discrimination_tells_a_collapsed_batch_from_a_varied_one():
    layer = MinibatchDiscrimination(6, 4, 3)
    collapsed = torch.randn(1, 6).expand(10, 6)
    varied = 1e4 * torch.randn(10, 6)  # far apart: only the j = i term is left
    assert torch.allclose(layer(collapsed)[:, 6:], torch.full((10, 4), 10.0))
    assert torch.allclose(layer(varied)[:, 6:], torch.ones(10, 4), atol=1e-4)


def test_minibatch_stddev_matches_its_closed_form():
    # one group of 4: feature 0 = (0, 0, 2, 2) has std 1, feature 1 is constant: their mean is 1/2
    x = torch.tensor([[0.0, 5.0], [0.0, 5.0], [2.0, 5.0], [2.0, 5.0]])
    out = MinibatchStdDev(group_size=4)(x)
    assert torch.equal(out[:, :2], x) and out[:, 2].tolist() == pytest.approx([0.5] * 4, abs=1e-4)
    collapsed = MinibatchStdDev(group_size=4)(torch.randn(1, 3).expand(8, 3))
    assert collapsed[:, 3].abs().max() < 1e-3  # √1e-8: zero up to the layer's epsilon


def test_minibatch_stddev_equals_torch_var_with_its_gradients_and_their_gradients():
    """The layer's written-out variance (the fast form) gives torch.var's values, input gradients and the
    second derivatives a gradient penalty backpropagates through."""

    def with_torch_var(x, g=4):
        groups = x.view(g, len(x) // g, *x.shape[1:])
        std = (groups.var(dim=0, unbiased=False) + 1e-8).sqrt().flatten(1).mean(dim=1)
        return torch.cat([x, std.repeat(g).view(len(x), 1, 1, 1).expand(len(x), 1, *x.shape[2:])], dim=1)

    x = torch.randn(12, 5, 4, 4, requires_grad=True)
    weights = torch.randn(12, 6, 4, 4)
    results = []
    for layer in (MinibatchStdDev(4), with_torch_var):
        out = layer(x)
        (grad,) = torch.autograd.grad((out * weights).sum(), x, create_graph=True)
        (second,) = torch.autograd.grad(grad.square().sum(), x)
        results.append((out, grad, second))
    for fast, reference in zip(*results):
        torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("option", [{}, {"minibatch_features": 4}, {"minibatch_stddev": 4}])
def test_a_discriminators_decision_depends_on_the_batch_only_with_a_minibatch_option(option):
    d = mlp.Discriminator((2,), hidden=[16, 16], pieces=1, **option)
    x = torch.randn(8, 2)
    y = x.clone()
    y[1:] = y[0]  # same first sample, the rest of the batch collapsed onto it
    changed = not torch.allclose(d(x)[0], d(y)[0])
    assert changed == bool(option)


@pytest.mark.parametrize("option", [{"pack": 2}, {"minibatch_features": 4}, {"minibatch_stddev": 2}])
def test_dcgan_discriminator_options(option):
    d = dcgan.Discriminator(1, 16, width=8, aux_classes=10, **option)
    x = torch.randn(8, option.get("pack", 1), 16, 16)
    out = d(x)
    logits, classes = out.adversarial, out.classes
    assert logits.shape == (8,) and classes.shape == (8, 10)
    y = x.clone()
    y[1:] = y[0]
    assert torch.allclose(d.eval()(x).adversarial[0], d(y).adversarial[0]) == ("pack" in option)


def test_remedies_train_through_the_cli(compose, quick, tmp_path):
    cfg = compose(
        SMALL_MLP
        + quick
        + ["model.pack=2", "model.discriminator.minibatch_features=4", "model.discriminator.minibatch_stddev=2", "trainer.steps=3"]
    )
    logs = train(cfg, tmp_path / "run")
    assert math.isfinite(logs["loss/D"]) and (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


@pytest.mark.parametrize("preset", ["pacgan", "mode_coverage"])
def test_mode_collapse_presets_build_for_either_mixture(compose, preset):
    cfg = compose([f"experiment={preset}", "dataset=ring8", "dataset.source.n=256", "model.pack=4"])
    assert cfg.dataset.name == "ring8" and cfg.trainer.batch_size % 4 == 0
    build_data(cfg)
    family = build_family(cfg)
    first = next(m for m in family.networks["discriminator"].modules() if isinstance(m, torch.nn.Linear))
    assert family.pack == 4 and first.in_features == 2 * 4
