"""LAPGAN (Denton et al. 2015): the Laplacian pyramid, the sampling cascade and each level's discriminator."""

import pytest
import torch

from gantrain.cli import build_family, train
from gantrain.errors import ConfigError
from gantrain.models.lapgan import gaussian_pyramid, laplacian_pyramid, level_sizes, reconstruct, upsample

FAST = ["model=lapgan", "model.base_size=4", "trainer.batch_size=8", "trainer.num_samples=9", "trainer.eval_every=0", "trainer.log_every=1"]


def test_pyramid_reconstructs_the_image_exactly():
    # pixels on a 1/128 grid: pooling (÷4) and bilinear weights (¼, ¾) are exact in float32, so is the sum
    x = torch.randint(-128, 129, (3, 2, 16, 16), generator=torch.Generator().manual_seed(0)).float() / 128
    base, residuals = laplacian_pyramid(x, 3)
    assert base.shape[-1] == 4 and [h.shape[-1] for h in residuals] == [8, 16]
    assert torch.equal(reconstruct(base, residuals), x)
    y = torch.rand(2, 3, 32, 32) * 2 - 1  # any image: to float rounding
    torch.testing.assert_close(reconstruct(*laplacian_pyramid(y, 4)), y, rtol=0, atol=1e-6)


def test_residuals_are_band_pass_and_the_coarse_image_is_the_average():
    x = torch.randn(1, 1, 8, 8)
    base, (h,) = laplacian_pyramid(x, 2)
    torch.testing.assert_close(base, x.view(1, 1, 4, 2, 4, 2).mean((3, 5)))
    torch.testing.assert_close(h, x - upsample(base))
    assert torch.equal(laplacian_pyramid(torch.full((1, 1, 8, 8), 0.5), 2)[1][0], torch.zeros(1, 1, 8, 8))


def test_levels_double_from_the_base_size_and_other_sizes_are_refused():
    assert level_sizes(16, 4) == [4, 8, 16] and level_sizes(32, 8) == [8, 16, 32]
    for size, base in [(24, 4), (4, 4), (16, 32)]:
        with pytest.raises(ValueError, match="base_size"):
            level_sizes(size, base)


def test_cascade_with_zero_residual_generators_returns_the_upsampled_base_sample(compose):
    family = build_family(compose(FAST)).eval()
    g = family.networks["generator"]
    for residual in g.residuals:
        last = residual.net[-1]
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
    inputs = family.fixed_inputs(5, torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = g.base(inputs["z"])
        assert torch.equal(family.generate(inputs), upsample(upsample(base)).clamp(-1, 1))
        assert not torch.equal(family.generate({**inputs, "z": inputs["z"] + 1}), upsample(upsample(base)).clamp(-1, 1))


def test_each_level_discriminator_sees_images_at_its_own_size_built_on_the_real_coarse_image(compose):
    family = build_family(compose(FAST))
    d = family.networks["discriminator"]
    seen = {k: [] for k in range(3)}
    for k, level in enumerate(d.levels):
        level.register_forward_hook(lambda m, args, out, k=k: seen[k].append(args[0].detach().clone()))
    real = torch.rand(6, 1, 16, 16) * 2 - 1
    for phase in ("discriminator", "generator"):
        for k in seen:
            seen[k].clear()
        family.loss(phase, {"image": real}, 0)
        for k, size in enumerate([4, 8, 16]):
            assert {x.shape for x in seen[k]} == {(6, 1, size, size)}, (phase, k)
    # the D phase's real inputs are the real pyramid; every fake at level k ≥ 1 is u(real I_{k−1}) + a residual
    family.loss("discriminator", {"image": real}, 0)
    pyramid = gaussian_pyramid(real, 3)
    for k in range(3):
        real_in, fake_in = seen[k][-2:]
        assert torch.equal(real_in, pyramid[k])
    g = family.networks["generator"]
    torch.nn.init.zeros_(g.residuals[1].net[-1].weight)
    torch.nn.init.zeros_(g.residuals[1].net[-1].bias)
    family.loss("discriminator", {"image": real}, 0)
    assert torch.equal(seen[2][-1], upsample(pyramid[1]))


def test_the_generator_phase_updates_every_level_and_the_discriminator_phase_none_of_g(compose, tmp_path):
    cfg = compose(FAST + ["trainer.steps=1"])
    family = build_family(cfg)
    phases = {p.name: p.networks for p in family.phases(1)}
    assert phases == {"discriminator": ("discriminator",), "generator": ("generator",)}
    loss, logs = family.loss("generator", {"image": torch.rand(4, 1, 16, 16)}, 0)
    loss.backward()
    g = family.networks["generator"]
    for part in [g.base, *g.residuals]:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert all(p.grad is None for p in family.networks["discriminator"].parameters())
    assert torch.equal(logs["loss/G"], logs["level0/G"] + logs["level1/G"] + logs["level2/G"])


def test_lapgan_trains_on_32px_with_an_8px_base_and_refuses_regularizers(compose, tmp_path):
    logs = train(compose(FAST + ["trainer.steps=1", "dataset.image_size=32", "model.base_size=8"]), tmp_path / "a")
    assert {"level0/D", "level1/D", "level2/D"} <= set(logs)
    with pytest.raises(ConfigError, match="regularizer=none"):
        train(compose(FAST + ["trainer.steps=1", "regularizer=r1"]), tmp_path / "b")


def test_generator_and_discriminators_share_the_base_size(compose):
    cfg = compose(FAST)
    cfg.model.discriminator.base_size = 8
    with pytest.raises(ConfigError, match="must start at model.base_size=4"):
        build_family(cfg)
