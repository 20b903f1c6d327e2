"""BigGAN (Brock et al. 2019): conditional batch norm, hierarchical z, self-attention, the projection
discriminator (its class embedding spectrally normalized), the official parameter counts, orthogonal
regularization, truncated sampling, the EMA's start step and the digits tuning."""

import math

import pytest
import torch
from hydra.utils import instantiate
from torch import nn
from torch.nn.utils import parametrize
from torch.optim.swa_utils import AveragedModel

from gantrain.families.biggan import truncated_normal
from gantrain.loop.update import ema_with_warmup
from gantrain.models.biggan import ConditionalBatchNorm, Discriminator, Generator, SelfAttention
from gantrain.regularizers import Orthogonal, SpectralNorm

SMALL = dict(width=8, max_width=32, attention=8)


def test_conditional_batch_norm_with_zero_linear_layers_is_plain_batch_norm():
    cbn, bn = ConditionalBatchNorm(6, 10), nn.BatchNorm2d(6)
    nn.init.zeros_(cbn.gain.weight)
    nn.init.zeros_(cbn.bias.weight)
    x, y = torch.randn(8, 6, 5, 5) * 3 + 1, torch.randn(8, 10)
    assert torch.allclose(cbn(x, y), bn(x), atol=1e-6)
    nn.init.normal_(cbn.gain.weight)  # and otherwise the gain is 1 + linear(y)
    assert torch.allclose(cbn(x, y), bn(x) * (1 + cbn.gain(y))[:, :, None, None], atol=1e-5)


def test_self_attention_with_gamma_zero_is_the_identity():
    attention, x = SelfAttention(16), torch.randn(2, 16, 8, 8)
    assert torch.equal(attention(x), x)
    with torch.no_grad():
        attention.gamma.fill_(0.5)
    assert not torch.allclose(attention(x), x)


def test_d_depends_on_the_class_only_through_the_projection_term():
    torch.manual_seed(0)
    d = Discriminator(1, 16, 10, **SMALL)
    x = torch.randn(6, 1, 16, 16)
    y1, y2 = torch.tensor([0, 1, 2, 3, 4, 5]), torch.tensor([9, 8, 7, 6, 5, 4])
    h = d.features(x)
    difference = d(x, y1) - d(x, y2)
    assert torch.allclose(difference, ((d.class_embedding(y1) - d.class_embedding(y2)) * h).sum(1), atol=1e-5)
    assert torch.allclose(d(x, y1) - (d.class_embedding(y1) * h).sum(1), d.linear(h).flatten(), atol=1e-5)


def test_spectral_norm_normalizes_the_projection_embedding_of_d_but_not_the_shared_one_of_g():
    torch.manual_seed(0)
    g, d = Generator(60, 1, 16, 10, **SMALL), Discriminator(1, 16, 10, **SMALL)
    with torch.no_grad():
        d.embed.weight.mul_(5.0)  # class vectors of norm 5: σ = 5 before normalization
    SpectralNorm(generator=True).setup({"generator": g, "discriminator": d})
    for _ in range(3):  # a power iteration per training forward pass
        d(torch.randn(4, 1, 16, 16), torch.arange(4))
    d.eval()
    assert torch.linalg.matrix_norm(d.class_embedding(torch.arange(10)), ord=2).item() == pytest.approx(1.0, rel=1e-3)
    assert not parametrize.is_parametrized(g.shared) and isinstance(g.shared, nn.Embedding)


def test_each_block_gets_its_own_chunk_of_z_beside_the_shared_embedding():
    torch.manual_seed(0)
    g = Generator(12, 1, 16, 10, **SMALL).eval()  # 2 blocks: 3 chunks of 4
    seen = []
    g.blocks[0].register_forward_hook(lambda module, args, out: seen.append(out))
    z, y = torch.randn(3, 12), torch.tensor([1, 2, 3])
    g(z, y)
    z2 = z.clone()
    z2[:, 8:] += 1.0  # the last block's chunk
    g(z2, y)
    assert torch.equal(seen[0], seen[1])
    z3 = z.clone()
    z3[:, 4:8] += 1.0  # the first block's chunk
    g(z3, y)
    assert not torch.allclose(seen[0], seen[2])
    with pytest.raises(ValueError, match="multiple of 3"):
        Generator(10, 1, 16, 10)


def test_the_128_model_has_the_official_parameter_counts():
    """The 128×128 ImageNet model (ch 96, attention at 64, dim_z 120, shared embedding 128): G 70,433,988 and D
    87,982,370 parameters, the counts google/compare_gan's BigGAN test asserts (its D count is also
    BigGAN-PyTorch's)."""
    with torch.device("meta"):
        g = Generator(120, 3, 128, 1000, width=96, max_width=1536, embed_dim=128, attention=64)
        d = Discriminator(3, 128, 1000, width=96, max_width=1536, attention=64)
    assert sum(p.numel() for p in g.parameters()) == 70_433_988
    assert sum(p.numel() for p in d.parameters()) == 87_982_370


def _generator_with(weight: torch.Tensor) -> nn.Module:
    g = nn.Sequential(nn.Linear(weight.shape[1], weight.shape[0], bias=False))
    with torch.no_grad():
        g[0].weight.copy_(weight)
    return g


def test_the_orthogonal_penalty_and_its_gradient_vanish_for_orthonormal_rows():
    q, _ = torch.linalg.qr(torch.randn(6, 4, dtype=torch.float64))
    g = _generator_with(q.T.float())  # 4 orthonormal rows (filters) of 6 inputs
    penalty = Orthogonal(1e-4).generator_penalty(g, 0)
    penalty.backward()
    assert penalty.item() == pytest.approx(0.0, abs=1e-15)
    assert g[0].weight.grad.abs().max().item() < 1e-10
    # elsewhere the gradient is 4β(FFᵀ ⊙ (1 − I))F, twice what the official code adds
    f = torch.randn(4, 6)
    g = _generator_with(f)
    Orthogonal(1e-4).generator_penalty(g, 0).backward()
    gram = f @ f.T
    assert torch.allclose(g[0].weight.grad, 4e-4 * (gram - torch.diag(gram.diagonal())) @ f, atol=1e-7)


def test_the_orthogonal_penalty_of_more_filters_than_inputs_is_the_off_diagonal_gram_of_the_filters():
    f = torch.randn(50, 3, dtype=torch.float64)  # like G's first linear layer: 16·ch filters of one z chunk
    g = _generator_with(f.float())
    penalty = Orthogonal(1e-4).generator_penalty(g, 0)
    penalty.backward()
    f = f.float().double()
    off_diagonal = f @ f.T - torch.diag((f @ f.T).diagonal())
    assert penalty.item() == pytest.approx(1e-4 * off_diagonal.pow(2).sum().item(), rel=1e-6)
    assert torch.allclose(g[0].weight.grad.double(), 4e-4 * off_diagonal @ f, rtol=1e-4, atol=1e-7)


def test_a_spectrally_normalized_layer_is_penalized_on_its_raw_weight():
    f = torch.randn(4, 6)
    g = _generator_with(f)
    SpectralNorm(generator=True).setup({"generator": g})
    gram = f @ f.T
    expected = 1e-4 * (gram - torch.diag(gram.diagonal())).pow(2).sum()
    assert Orthogonal(1e-4).generator_penalty(g, 0).item() == pytest.approx(expected.item(), rel=1e-5)


def test_truncated_samples_lie_within_tau_and_are_resampled_not_clamped():
    tau = 1.0
    z = truncated_normal((200_000,), tau, torch.Generator().manual_seed(0))
    assert z.abs().max() <= tau
    assert (z.abs() > 0.999).float().mean() < 0.002  # a clamp would pile 32 % of the mass on ±τ
    phi, mass = math.exp(-0.5 * tau**2) / math.sqrt(2 * math.pi), math.erf(tau / math.sqrt(2))
    assert z.var().item() == pytest.approx(1 - 2 * tau * phi / mass, abs=0.005)  # the truncated normal's variance


def test_the_family_samples_and_previews_at_its_truncations(compose):
    cfg = compose(["model=biggan", "model.truncation=0.5", "model.generator.width=4", "model.discriminator.width=4"])
    family = instantiate(cfg.model)
    inputs = family.fixed_inputs(20, torch.Generator().manual_seed(0))
    assert inputs["z"].abs().max() <= 0.5 and torch.equal(inputs["label"], torch.arange(20) % 10)
    rows = []
    family.previews(lambda z, y: rows.append((z, y)) or torch.zeros(len(z), 1, 16, 16), inputs, {})
    assert all(z.abs().max().item() <= tau for (z, _), tau in zip(rows, family.preview_truncations))
    assert len(rows) == len(family.preview_truncations) and all(len(z) == len(rows) for z, _ in rows)


def _ema_trajectory(decay: float, start: int, values: list[float]) -> list[float]:
    p = nn.Parameter(torch.zeros((), dtype=torch.float64))
    ema = AveragedModel(nn.ParameterList([p]), multi_avg_fn=ema_with_warmup(decay, start), use_buffers=True)
    out = []
    for v in values:
        with torch.no_grad():
            p.fill_(v)
        ema.update_parameters(nn.ParameterList([p]))
        out.append(ema.module[0].item())
    return out


def test_the_ema_copies_the_network_before_its_start_step_then_follows_its_closed_form():
    values = [float(v) for v in torch.randn(12, generator=torch.Generator().manual_seed(0))]
    decay, start = 0.5, 4
    trajectory = _ema_trajectory(decay, start, values)
    assert trajectory[:start] == values[:start]  # the source itself for the first `start` steps
    average = values[start - 1]
    for step in range(start, len(values)):  # then n = 0, 1, … updates since the start
        n = step - start
        beta = min(decay, (1 + n) / (10 + n))
        average = beta * average + (1 - beta) * values[step]
        assert trajectory[step] == pytest.approx(average, rel=1e-6)  # the weight is computed in float32
    assert _ema_trajectory(decay, 0, values)[1] == pytest.approx(min(decay, 2 / 11) * values[0] + (1 - min(decay, 2 / 11)) * values[1])


# model=biggan's own settings, which configs/tuning/biggan_hinge_adam_biggan_digits.yaml replaces on digits
PAPER = {"lr_g": 5e-5, "lr_d": 2e-4, "betas": [0.0, 0.999], "d_steps": 2, "latent_dim": 120, "width": 32, "ema": 0.999, "steps": 1500}
UNDO_TUNING = [  # the overrides the tuning file and the README give for them
    "optimizer.lr_g=5e-5",
    "optimizer.lr_d=2e-4",
    "trainer.d_steps=2",
    "model.latent_dim=120",
    "model.generator.width=32",
    "model.discriminator.width=32",
    "trainer.ema=0.999",
    "trainer.steps=1500",
]


def biggan_settings(cfg) -> dict:
    o, t, m = cfg.optimizer, cfg.trainer, cfg.model
    assert m.generator.width == m.discriminator.width
    return {
        "lr_g": o.lr_g,
        "lr_d": o.lr_d,
        "betas": list(o.betas),
        "d_steps": t.d_steps,
        "latent_dim": m.latent_dim,
        "width": m.generator.width,
        "ema": t.ema,
        "steps": t.steps,
    }


def test_biggan_trains_with_the_papers_settings_off_digits_and_its_cpu_tuning_on_digits(compose, quick, tmp_path):
    from gantrain.cli import train

    paper = compose(["model=biggan", "dataset=mnist"])
    assert biggan_settings(paper) == PAPER and paper.loss._target_.endswith("hinge")
    assert paper.regularizer.spectral_norm.generator and paper.regularizer.orthogonal.weight == 1e-4
    tuned = {**PAPER, "lr_g": 2e-4, "lr_d": 4e-4, "d_steps": 1, "latent_dim": 60, "width": 16, "ema": 0.0, "steps": 1000}
    assert biggan_settings(compose(["model=biggan"])) == tuned
    assert biggan_settings(compose(["model=biggan", *UNDO_TUNING])) == PAPER
    sagan = compose(["experiment=biggan_sagan", "dataset=mnist"])
    assert biggan_settings(sagan) == {**PAPER, "lr_g": 1e-4, "lr_d": 4e-4, "betas": [0.0, 0.9], "d_steps": 1}
    cfg = compose(["model=biggan", "model.generator.width=4", "model.discriminator.width=4", "trainer.d_steps=2", *quick])
    logs = train(cfg, tmp_path)
    assert "penalty/orthogonal" in logs and math.isfinite(logs["loss/D"])


def test_the_trainer_keeps_its_ema_a_copy_of_g_until_trainer_ema_start(compose, quick, tmp_path):
    from gantrain.cli import train

    cfg = compose(
        ["model=dcgan", "model.generator.width=4", "model.discriminator.width=4", "trainer.ema=0.9", "trainer.ema_start=5", *quick]
    )
    state_dir = tmp_path / "run"
    train(cfg, state_dir)
    state = torch.load(state_dir / "checkpoints" / "last.pt", weights_only=False)
    ema = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    generator = {k.removeprefix("networks.generator."): v for k, v in state["networks"].items() if k.startswith("networks.generator.")}
    assert all(torch.equal(ema[k], v) for k, v in generator.items())  # 2 steps < ema_start


def test_a_negative_ema_start_is_refused_in_one_line():
    from gantrain.errors import ConfigError
    from gantrain.settings import TrainerSettings

    with pytest.raises(ConfigError, match=r"^trainer.ema_start=-1 must be a non-negative integer"):
        TrainerSettings(ema_start=-1)
