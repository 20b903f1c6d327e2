"""StyleGAN: AdaIN (Eq. 1), noise, the moving average w̄ and truncation (Eq. 3), style mixing seen through
hooks on the layers, the family's preview grids, and one training step at each size and with each preset."""

import math

import pytest
import torch
import torch.nn.functional as F

from gantrain.cli import build_data, build_family, train
from gantrain.models.stylegan import AdaIN, Generator, NoiseInjection

TINY = [
    "model.generator.width=4",
    "model.generator.max_width=16",
    "model.discriminator.width=4",
    "model.discriminator.max_width=16",
    "model.latent_dim=16",
    "model.generator.mapping_layers=2",
    "trainer.eval_every=0",
    "trainer.log_every=1",
    "trainer.sample_every=1000",
    "trainer.checkpoint_every=1000",
    "trainer.num_samples=16",
    "trainer.batch_size=16",
]


def tiny_generator(**kwargs) -> Generator:
    return Generator(latent_dim=16, channels=1, image_size=16, mapping_layers=2, width=4, max_width=16, **kwargs)


def test_adain_output_has_the_styles_per_channel_mean_and_std():
    adain = AdaIN(channels=6, w_dim=10)
    with torch.no_grad():
        adain.affine.parametrizations.weight.original.normal_()  # styles that differ per sample and channel
    x = torch.randn(3, 6, 8, 8) * torch.rand(1, 6, 1, 1) * 5 + torch.randn(1, 6, 1, 1) * 3
    w = torch.randn(3, 10)
    y_s, y_b = adain.affine(w).chunk(2, dim=1)
    out = adain(x, w)
    assert torch.allclose(out.mean(dim=(2, 3)), y_b, atol=1e-4)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), y_s.abs(), atol=1e-4)


def test_noise_is_one_image_per_sample_scaled_by_learned_per_channel_factors():
    noise = NoiseInjection(channels=3, size=4)
    with torch.no_grad():
        noise.weight.copy_(torch.tensor([0.0, 1.0, -2.0]))
    added = noise(torch.zeros(2, 3, 4, 4))
    assert torch.equal(added[:, 0], torch.zeros(2, 4, 4))
    assert torch.allclose(added[:, 2], -2 * added[:, 1]) and not torch.equal(added[0, 1], added[1, 1])
    fixed = noise(torch.zeros(2, 3, 4, 4), randomize=False)
    assert torch.equal(fixed[0], fixed[1]) and torch.allclose(fixed[:, 1], noise.fixed[:, 0])


def test_w_avg_is_a_moving_average_of_mapped_latents_in_training_only():
    g = tiny_generator(mixing_prob=0.0, w_avg_beta=0.9)
    z = torch.randn(8, 16)
    w = g.mapping(z).detach()
    g.train()
    g.styles(z)
    assert torch.allclose(g.w_avg, 0.1 * w.mean(dim=0))
    g.styles(z)
    assert torch.allclose(g.w_avg, 0.9 * 0.1 * w.mean(dim=0) + 0.1 * w.mean(dim=0))
    before = g.w_avg.clone()
    g.eval()
    g(z)
    assert torch.equal(g.w_avg, before)


def _trained_w_avg(g: Generator) -> Generator:
    g.train()
    for _ in range(3):
        g.styles(torch.randn(32, 16))
    return g.eval()


def test_psi_zero_makes_every_sample_w_avg_and_identical():
    g = _trained_w_avg(tiny_generator())
    assert g.w_avg.abs().sum() > 0
    z = torch.randn(6, 16)
    ws = g.styles(z, psi=0.0)
    assert torch.equal(ws, g.w_avg.expand_as(ws))
    images = g(z, psi=0.0, randomize_noise=False)
    assert torch.equal(images, images[:1].expand_as(images))
    assert not torch.allclose(g(z, randomize_noise=False)[0], g(z, randomize_noise=False)[1])


def test_psi_one_leaves_w_unchanged_and_psi_interpolates():
    g = _trained_w_avg(tiny_generator())
    z = torch.randn(6, 16)
    w = g.mapping(z)[:, None].expand(-1, g.num_layers, -1)
    assert torch.equal(g.styles(z, psi=1.0), w)
    assert torch.allclose(g.styles(z, psi=0.7), g.w_avg + 0.7 * (w - g.w_avg), atol=1e-6)
    assert torch.equal(g(z, psi=1.0, randomize_noise=False), g.synthesize(w, randomize_noise=False))


def _hooked_styles(g: Generator, z: torch.Tensor):
    """The mapping network's outputs and the w each AdaIN layer received during one forward pass."""
    mapped, received = [], {}
    handles = [g.mapping.register_forward_hook(lambda m, args, out: mapped.append(out.detach()))]
    for i, layer in enumerate(g.layers):
        handles.append(layer.adain.register_forward_hook(lambda m, args, out, i=i: received.__setitem__(i, args[1].detach())))
    g(z)
    for h in handles:
        h.remove()
    return mapped, [received[i] for i in range(g.num_layers)]


def test_style_mixing_feeds_two_latents_on_the_two_sides_of_a_random_crossover():
    g = tiny_generator(mixing_prob=1.0).train()
    crossovers = set()
    for _ in range(12):
        z = torch.randn(4, 16)
        mapped, received = _hooked_styles(g, z)
        assert len(mapped) == 2 and torch.equal(mapped[0], g.mapping(z).detach())
        w1, w2 = mapped
        assert not torch.allclose(w1, w2)
        crossover = next(i for i, w in enumerate(received) if not torch.equal(w, w1))
        assert 1 <= crossover < g.num_layers
        assert all(torch.equal(w, w1) for w in received[:crossover])
        assert all(torch.equal(w, w2) for w in received[crossover:])
        crossovers.add(crossover)
    assert len(crossovers) > 2  # the crossover layer is random
    mapped, received = _hooked_styles(tiny_generator(mixing_prob=0.0).train(), torch.randn(4, 16))
    assert len(mapped) == 1 and all(torch.equal(w, mapped[0]) for w in received)
    mapped, received = _hooked_styles(g.eval(), torch.randn(4, 16))  # sampling never mixes
    assert len(mapped) == 1 and all(torch.equal(w, mapped[0]) for w in received)


def test_style_mixing_happens_with_the_configured_probability():
    g = tiny_generator(mixing_prob=0.9).train()
    calls = []
    g.mapping.register_forward_hook(lambda *_: calls.append(1))
    for _ in range(1000):
        g.styles(torch.randn(2, 16))
    mixed = len(calls) - 1000
    assert abs(mixed / 1000 - 0.9) < 0.04  # 4 standard errors


def test_synthesis_fade_in_blends_the_upsampled_previous_level():
    g = tiny_generator().eval()
    z = torch.randn(3, 16)
    with torch.no_grad():
        old = F.interpolate(g(z, level=1, randomize_noise=False), scale_factor=2, mode="nearest")
        new = g(z, level=2, randomize_noise=False)
        assert torch.allclose(g(z, level=2, alpha=0.0, randomize_noise=False), old, atol=1e-6)
        assert torch.allclose(g(z, level=2, alpha=0.25, randomize_noise=False), 0.75 * old + 0.25 * new, atol=1e-5)


def _family(compose, extra=()):
    cfg = compose(["model=stylegan"] + TINY + list(extra))
    build_data(cfg)
    return build_family(cfg)


def test_family_previews_truncation_rows_and_a_style_mixing_grid(compose):
    family = _family(compose)
    g = _trained_w_avg(family.networks["generator"])
    z = torch.randn(16, 16)
    with torch.no_grad():
        previews = family.previews(g, {"z": z}, torch.zeros(16, 1, 16, 16))
        assert list(previews["truncation"].row_labels) == ["ψ = 1", "ψ = 0.7", "ψ = 0.5", "ψ = 0"]
        sweep = previews["truncation"].images  # rows ψ = 1, 0.7, 0.5, 0; columns z[:4]
        assert sweep.shape == (4, 4, 1, 16, 16)
        assert torch.allclose(sweep[0], g(z[:4], randomize_noise=False))
        assert torch.equal(sweep[3], sweep[3, :1].expand_as(sweep[3])) and not torch.equal(sweep[0, 0], sweep[0, 1])
        grid = previews["style_mixing"].images
        assert grid.shape == (5, 5, 1, 16, 16) and grid[0, 0].isnan().all()  # the corner is blank
        a, b = g(z[:4], randomize_noise=False), g(z[4:8], randomize_noise=False)
        assert torch.allclose(grid[0, 1:], b, atol=1e-6) and torch.allclose(grid[1:, 0], a, atol=1e-6)
        all_a = family.style_mixing(g, z[:4], z[4:8], crossover=g.num_layers).images
        all_b = family.style_mixing(g, z[:4], z[4:8], crossover=0).images
        assert torch.allclose(all_a[1:, 1:], a[:, None].expand(4, 4, 1, 16, 16), atol=1e-6)  # rows: source A
        assert torch.allclose(all_b[1:, 1:], b[None].expand(4, 4, 1, 16, 16), atol=1e-6)  # columns: source B
        mid = grid[1:, 1:]
        assert not torch.allclose(mid, all_a[1:, 1:]) and not torch.allclose(mid, all_b[1:, 1:])


def test_family_samples_with_the_configured_truncation(compose):
    family = _family(compose, ["model.truncation_psi=0.0"])
    g = _trained_w_avg(family.networks["generator"])
    g.layers.apply(lambda m: m.weight.data.zero_() if isinstance(m, NoiseInjection) else None)  # no noise
    samples = family.generate({"z": torch.randn(5, 16)}, g)
    assert torch.allclose(samples, samples[:1].expand_as(samples))


def test_family_samples_at_psi_07_synthesize_w_avg_plus_07_times_w_minus_w_avg(compose):
    """Eq. 3 through the family: w' = w̄ + ψ(w − w̄) from the mapping network's w, with the same noise draws."""
    family = _family(compose, ["model.truncation_psi=0.7"])
    g = _trained_w_avg(family.networks["generator"])
    g.layers.apply(lambda m: m.weight.data.fill_(0.5) if isinstance(m, NoiseInjection) else None)  # noise matters
    z = torch.randn(5, 16)
    torch.manual_seed(3)
    samples = family.generate({"z": z}, g)
    with torch.no_grad():
        w, w_avg = g.mapping(z), g.w_avg
        assert w_avg.abs().sum() > 0
        styles = lambda psi: (w_avg + psi * (w - w_avg))[:, None].expand(-1, g.num_layers, -1)  # noqa: E731
        torch.manual_seed(3)
        expected = g.synthesize(styles(0.7))  # the per-layer noise of the same seed
        torch.manual_seed(3)
        untruncated = g.synthesize(styles(1.0))
        torch.manual_seed(3)
        at_mean = g.synthesize(styles(0.0))
    assert torch.allclose(samples, expected, atol=1e-5)  # lerp and w̄ + ψ(w − w̄) round apart by ~1e-7
    assert not torch.allclose(samples, untruncated, atol=1e-3) and not torch.allclose(samples, at_mean, atol=1e-3)


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_stylegan_builds_and_takes_a_step_at_each_size(compose, tmp_path, size):
    cfg = compose(["model=stylegan", f"dataset.image_size={size}", "trainer.steps=1"] + TINY)
    logs = train(cfg, tmp_path / "run")
    assert logs["growth/resolution"] == size and math.isfinite(logs["loss/D"]) and math.isfinite(logs["loss/G"])
    assert build_family(cfg).generate({"z": torch.randn(2, 16)}).shape == (2, 1, size, size)


@pytest.mark.parametrize(
    "extra",
    [
        ["loss=wgan_gp", "trainer.d_steps=2"],
        ["experiment=stylegan_r1"],
        ["model.phase_images=32", "trainer.ema=0.9", "trainer.sample_every=3"],
    ],
)
def test_stylegan_trains_with_wgan_gp_the_r1_preset_and_growth(compose, tmp_path, extra):
    cfg = compose(["model=stylegan", "trainer.steps=3"] + TINY + extra)
    logs = train(cfg, tmp_path / "run")
    assert all(math.isfinite(v) for v in logs.values())
    if "experiment=stylegan_r1" in extra:
        assert "penalty/r1" in logs and cfg.optimizer.betas == [0.0, 0.99] and cfg.trainer.ema > 0
    if "model.phase_images=32" in extra:  # 2 steps per phase: step 2 starts fading 8×8 in
        assert logs["growth/resolution"] == 8 and logs["growth/alpha"] == 0.0
        assert (tmp_path / "run" / "samples" / "truncation_step_0000003.png").is_file()
        assert (tmp_path / "run" / "samples" / "style_mixing_step_0000003.png").is_file()
