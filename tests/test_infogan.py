"""InfoGAN (Chen et al. 2016): the information bound's closed forms, the uniform codes, which phase updates Q, and
the code-sweep previews; the glyph properties and the matched accuracy its benchmark measures."""

import math

import pytest
import torch
from hydra.utils import instantiate
from scipy import stats

from gantrain.families.infogan import categorical_information, gaussian_nll, uniform_information
from gantrain.metrics.properties import height, matched_accuracy, slant, stroke_width


def small_infogan(compose, *overrides):
    cfg = compose(
        ["model=infogan", "model.generator.width=0.125", "model.discriminator.width=0.125", "model.discriminator.q_hidden=8", *overrides]
    )
    torch.manual_seed(0)
    return instantiate(cfg.model)


@pytest.fixture
def infogan(compose):
    return small_infogan(compose)


def test_a_q_that_predicts_the_category_exactly_recovers_ln_10_and_a_uniform_q_recovers_nothing():
    codes = torch.arange(10).repeat(3)
    exact = 1000.0 * torch.nn.functional.one_hot(codes, 10).float()
    assert categorical_information(exact, codes).item() == pytest.approx(math.log(10), abs=1e-6)
    assert categorical_information(torch.zeros(30, 10), codes).item() == pytest.approx(0.0, abs=1e-6)


def test_the_fixed_std_gaussian_term_is_half_the_squared_error_plus_half_ln_2pi():
    c, mu = torch.randn(50, 2), torch.randn(50, 2)
    expected = 0.5 * (c - mu) ** 2 + 0.5 * math.log(2 * math.pi)
    assert torch.allclose(gaussian_nll(c, mu), expected)
    assert torch.allclose(gaussian_nll(c, mu), -torch.distributions.Normal(mu, 1.0).log_prob(c))
    # H(U(-1, 1)) = ln 2 per code, minus the cross-entropy, summed over the codes
    assert uniform_information(c, mu).item() == pytest.approx((2 * math.log(2) - expected.sum(1)).mean().item(), rel=1e-6)


def test_codes_are_a_uniform_category_and_uniform_continuous_codes_beside_uniform_noise(infogan):
    z = infogan.sample_latent(20000, torch.Generator().manual_seed(0))
    assert z.shape == (20000, 74)
    onehot = z[:, :10]
    assert torch.equal(onehot.sum(1), torch.ones(20000)) and set(onehot.unique().tolist()) == {0.0, 1.0}
    assert stats.chisquare(onehot.sum(0).numpy()).pvalue > 1e-3
    continuous = z[:, 10:12]
    assert continuous.abs().max() <= 1.0
    for j in range(2):  # U(-1, 1), not N(0, 1) (a known bug of other implementations)
        assert stats.kstest(continuous[:, j].numpy(), "uniform", args=(-1, 2)).pvalue > 1e-3
    assert z[:, 12:].abs().max() <= 1.0 and z[:, 12:].var().item() == pytest.approx(1 / 3, abs=0.01)


def test_a_normal_prior_is_refused(compose):
    with pytest.raises(Exception, match="uniform"):
        instantiate(compose(["model=infogan", "model.latent=normal"]).model)


def test_the_information_term_is_subtracted_from_the_discriminators_loss(infogan):
    torch.manual_seed(1)
    batch = {"image": torch.rand(16, 1, 16, 16) * 2 - 1}
    loss, logs = infogan.loss("discriminator", batch, 0)
    information = logs["info/categorical"] + infogan.continuous_weight * logs["info/continuous"]
    assert loss.item() == pytest.approx((logs["loss/D"] - information).item(), rel=1e-5)


@pytest.mark.parametrize("q_with_generator", [False, True])
def test_the_generator_phase_updates_g_and_q_only_when_asked_and_d_phase_updates_the_trunk_and_q(compose, q_with_generator):
    """The official code keeps Q among D's variables (G's phase updates G alone); Eq. 5's min over G and Q on request."""
    infogan = small_infogan(compose, f"model.q_with_generator={q_with_generator}")
    g, d = infogan.networks["generator"], infogan.networks["discriminator"]
    with_g = [d.q_head] if q_with_generator else []
    assert infogan.phase("generator").networks == ("generator", "q_head")[: 1 + q_with_generator]
    batch = {"image": torch.rand(16, 1, 16, 16) * 2 - 1}
    for phase, updated, untouched in [
        ("generator", [g, *with_g], [d.trunk, d.adversarial] + ([] if q_with_generator else [d.q_head])),
        ("discriminator", [d.trunk, d.q_head, d.adversarial], [g]),
    ]:
        infogan.zero_grad(set_to_none=True)
        loss, _ = infogan.loss(phase, batch, 0)
        loss.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for m in updated for p in m.parameters())
        assert all(p.grad is None for m in untouched for p in m.parameters())
        assert all(p.requires_grad for p in infogan.parameters())  # frozen() restored every flag


def test_a_q_head_in_the_generator_phase_gets_the_gradient_of_minus_l_i(compose):
    """G's loss is the adversarial term minus L_I: Q's gradient in G's phase (model.q_with_generator=true) is that of −L_I alone."""
    infogan = small_infogan(compose, "model.q_with_generator=true")
    q = infogan.networks["q_head"]
    batch = {"image": torch.rand(16, 1, 16, 16) * 2 - 1}
    torch.manual_seed(3)
    infogan.zero_grad(set_to_none=True)
    infogan.loss("generator", batch, 0)[0].backward()
    through_loss = [p.grad.clone() for p in q.parameters()]
    torch.manual_seed(3)
    infogan.zero_grad(set_to_none=True)
    fake, z = infogan._fake(16, None)
    information, _ = infogan.information_loss(infogan.networks["discriminator"](fake).codes, z)
    information.backward()
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(through_loss, q.parameters()))


def test_weights_start_as_the_official_codes_normal_0_002_and_batch_norm_scales_near_1(infogan):
    for name, m in infogan.named_modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and m.weight.numel() > 1000:
            assert m.weight.std().item() == pytest.approx(0.02, rel=0.1), name
            assert m.weight.mean().abs().item() < 0.002 and not m.bias.any(), name
        elif isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            assert (m.weight - 1).abs().max().item() < 0.1 and (m.weight - 1).abs().max().item() > 0 and not m.bias.any(), name


def test_previews_rows_are_categories_and_columns_sweep_one_code_over_minus_2_to_2(infogan):
    inputs = infogan.fixed_inputs(20, torch.Generator().manual_seed(0))
    assert torch.equal(inputs["z"][:, :10].argmax(1), torch.arange(20) % 10)
    previews = infogan.previews(lambda z: z[:, None, None, :], inputs, {})  # a "network" that shows its latents
    assert set(previews) == {"continuous_0", "continuous_1"}
    grid = previews["continuous_1"]
    assert (
        list(grid.row_labels) == [f"code {c}" for c in range(10)] and grid.column_labels[0] == "-2.0" and grid.column_labels[-1] == "+2.0"
    )
    z = grid.images.reshape(10, 10, -1)  # row, column
    assert torch.equal(z[..., :10].argmax(-1), torch.arange(10)[:, None].expand(10, 10))
    assert torch.allclose(z[..., 11], torch.linspace(-2, 2, 10).expand(10, 10))
    assert torch.equal(z[..., 10], torch.zeros(10, 10))
    assert torch.equal(z[..., 12:], inputs["z"][0, 12:].expand(10, 10, -1))  # one noise for the grid


def test_infogan_trains_a_step_from_the_command_line_config(compose, quick, tmp_path):
    from gantrain.cli import train

    logs = train(compose(["model=infogan", "model.generator.width=0.25", "model.discriminator.width=0.25", *quick]), tmp_path)
    assert {"info/categorical", "info/continuous"} <= set(logs)


# ------------------------------------------------------------------------- what the benchmark measures
def _bar(width: int, shear: float = 0.0) -> torch.Tensor:
    """A 12-row bar of ``width`` pixels on a 16×16 canvas, each row shifted right by ``shear`` per row upwards."""
    image = -torch.ones(16, 16)
    for row in range(2, 14):
        left = round(6 + shear * (13 - row))
        image[row, left : left + width] = 1.0
    return image[None]


def test_stroke_width_of_a_bar_is_its_width_and_slant_its_shear():
    widths = stroke_width(torch.stack([_bar(w) for w in (1, 2, 3)])).tolist()
    assert widths[0] == 1.0  # 12 inked pixels, a skeleton of 12
    assert all(w <= measured <= 1.25 * w for w, measured in zip((1, 2, 3), widths))  # skeletons end short of the tips
    assert widths[0] < widths[1] < widths[2]
    assert slant(_bar(2)[None]).item() == pytest.approx(0.0, abs=1e-6)
    assert slant(_bar(2, 0.5)[None]).item() == pytest.approx(0.5, abs=0.05)
    assert slant(_bar(2, -0.5)[None]).item() == pytest.approx(-0.5, abs=0.05)
    assert height(_bar(2)[None]).item() == pytest.approx(12 / 16)


def test_matched_accuracy_takes_the_best_one_to_one_assignment():
    classes = torch.tensor([0, 0, 1, 1, 2, 2])
    assert matched_accuracy(torch.tensor([5, 5, 3, 3, 9, 9]), classes) == 1.0
    assert matched_accuracy(torch.tensor([1, 1, 1, 1, 2, 2]), classes) == pytest.approx(4 / 6)  # one code, one class
