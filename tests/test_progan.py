"""Progressive GAN: equalized learning rate, pixel norm, fade-in of both networks, the growth schedule, and a
resumed run that continues mid-fade at the same resolution and α."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gantrain import checkpoint
from gantrain.cli import build_data, build_family, train
from gantrain.families.progressive import GrowthSchedule
from gantrain.models.progan import Blur, Discriminator, DownConv2d, Generator, PixelNorm, equalized

from conftest import counting_steps, perturbed_copy

# tiny networks: every test run takes well under a second per step
TINY = [
    "model.generator.width=4",
    "model.generator.max_width=16",
    "model.discriminator.width=4",
    "model.discriminator.max_width=16",
    "model.latent_dim=16",
    "trainer.eval_every=0",
    "trainer.log_every=1",
    "trainer.sample_every=1000",
    "trainer.checkpoint_every=1000",
    "trainer.num_samples=16",
    "trainer.batch_size=16",
]


@pytest.mark.parametrize("layer, gain", [(nn.Conv2d(8, 5, 3), math.sqrt(2)), (nn.Linear(12, 7), 1.0)])
def test_equalized_layer_uses_stored_weight_times_he_constant(layer, gain):
    fan_in = layer.weight[0].numel()
    equalized(layer, gain=gain)
    stored = layer.parametrizations.weight.original
    assert torch.allclose(layer.weight, stored * gain / math.sqrt(fan_in))
    assert torch.count_nonzero(layer.bias) == 0
    # the gradient reaching the stored N(0, 1) weight is the effective weight's gradient times c (§4.1)
    x = torch.randn(4, *((8, 6, 6) if isinstance(layer, nn.Conv2d) else (12,)))
    layer(x).square().sum().backward()
    effective = layer.weight.detach().requires_grad_(True)
    conv = F.conv2d if isinstance(layer, nn.Conv2d) else F.linear
    conv(x, effective, layer.bias.detach()).square().sum().backward()
    assert torch.allclose(stored.grad, effective.grad * gain / math.sqrt(fan_in), atol=1e-5)


def test_equalized_lr_multiplier_scales_weight_and_bias():
    layer = equalized(nn.Linear(64, 64), lr_mul=0.01)
    stored_w, stored_b = layer.parametrizations.weight.original, layer.parametrizations.bias.original
    assert torch.allclose(layer.weight, stored_w * math.sqrt(2) / 8 * 0.01)
    with torch.no_grad():
        stored_b.fill_(3.0)
    assert torch.allclose(layer.bias, torch.full((64,), 0.03))
    assert 80 < stored_w.std() < 120  # stored N(0, 1/lr_mul²) so the effective weights start as He's


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    x = torch.randn(3, 7, 5, 5) * 4 + 1
    assert torch.allclose(PixelNorm()(x).square().mean(dim=1), torch.ones(3, 5, 5), atol=1e-5)


def test_generator_fade_in_blends_upsampled_old_path_and_new_path():
    g = Generator(latent_dim=8, channels=3, image_size=32, width=4, max_width=16)
    z = torch.randn(5, 8)
    with torch.no_grad():
        old = F.interpolate(g(z, level=2), scale_factor=2, mode="nearest")  # 16×16 → 32×32
        h = z
        for block in g.blocks:
            h = block(h)
        new = g.to_rgb[3](h)  # the new 32×32 path, by hand
        assert torch.allclose(g(z, level=3, alpha=0.0), old, atol=1e-6)
        assert torch.allclose(g(z, level=3, alpha=1.0), new, atol=1e-6)
        assert torch.allclose(g(z, level=3, alpha=0.3), 0.7 * old + 0.3 * new, atol=1e-5)
        assert g(z).shape == (5, 3, 32, 32) and g(z, level=0).shape == (5, 3, 4, 4)


@pytest.mark.parametrize("blur", [False, True])
def test_discriminator_fade_in_blends_downsampled_old_path_and_new_path(blur):
    d = Discriminator(channels=3, image_size=32, width=4, max_width=16, group_size=4, blur=blur)
    x = torch.randn(8, 3, 16, 16)
    with torch.no_grad():
        old = d(F.avg_pool2d(x, 2), alpha=1.0)  # what D said at 8×8
        h = d.from_rgb[2](x)
        for block in reversed(d.blocks[:3]):
            h = block(h)
        new = h.squeeze(1)  # the new 16×16 path, by hand
        assert torch.allclose(d(x, alpha=0.0), old, atol=1e-5)
        assert torch.allclose(d(x, alpha=1.0), new, atol=1e-5)
        assert d(torch.randn(8, 3, 32, 32)).shape == (8,)
    with pytest.raises(ValueError, match="24 px"):
        d(torch.randn(8, 3, 24, 24))


def test_growth_schedule_doubles_every_phase_with_a_linear_fade():
    s = GrowthSchedule(top=3, phase_images=1000, batch_size=10, fade_fraction=0.5)  # 100 steps per phase
    assert s(0) == (0, 1.0) and s(99) == (0, 1.0)
    assert s(100) == (1, 0.0) and s(125) == (1, 0.5) and s(150) == (1, 1.0) and s(199) == (1, 1.0)
    assert s(200) == (2, 0.0) and s(310) == (3, 0.2)
    assert s(400) == (3, 1.0) and s(10_000) == (3, 1.0)
    assert GrowthSchedule(top=3, phase_images=0, batch_size=10)(0) == (3, 1.0)
    assert "8×8 fades in over images 1,000–1,500" in s.describe()
    with pytest.raises(ValueError):
        GrowthSchedule(top=3, phase_images=1000, batch_size=10, fade_fraction=0.0)


def test_family_fades_real_images_like_the_generator(compose):
    cfg = compose(["model=progan", "dataset.image_size=16"] + TINY)
    build_data(cfg)
    family = build_family(cfg)
    x = torch.randn(4, 1, 16, 16)
    assert torch.equal(family.real_at(x, 2, 1.0), x)
    coarse = F.avg_pool2d(x, 2)
    assert torch.allclose(family.real_at(x, 1, 1.0), coarse)
    assert torch.allclose(family.real_at(x, 1, 0.0), F.interpolate(F.avg_pool2d(coarse, 2), scale_factor=2))


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_progan_builds_and_takes_a_step_at_each_size(compose, tmp_path, size):
    cfg = compose(["model=progan", f"dataset.image_size={size}", "model.phase_images=0", "trainer.steps=1"] + TINY)
    logs = train(cfg, tmp_path / "run")
    assert logs["growth/resolution"] == size and math.isfinite(logs["loss/D"]) and math.isfinite(logs["loss/G"])
    family = build_family(cfg)
    assert family.generate({"z": torch.randn(2, 16)}).shape == (2, 1, size, size)


@pytest.mark.parametrize("extra", [["loss=wgan_gp"], ["regularizer=spectral_norm"], ["regularizer=r1"], ["experiment=progan_wgan_gp"]])
def test_progan_trains_with_other_losses_and_regularizers(compose, tmp_path, extra):
    cfg = compose(["model=progan", "model.phase_images=32", "trainer.steps=3", "trainer.d_steps=1"] + TINY + extra)
    logs = train(cfg, tmp_path / "run")
    assert logs["growth/resolution"] == 8 and all(math.isfinite(v) for v in logs.values())
    if "experiment=progan_wgan_gp" in extra:  # the paper's setting: WGAN-GP + drift, Adam(1e-3, (0, 0.99)), G EMA
        assert logs["penalty/gradient_penalty"] > 0 and logs["penalty/drift"] > 0
        assert cfg.optimizer.betas == [0.0, 0.99] and cfg.optimizer.lr == 1e-3 and cfg.trainer.ema > 0


def test_resume_mid_fade_continues_at_the_same_resolution_and_alpha(compose, tmp_path):
    # batch 16, phase 160 images = 10 steps, fading over the first 5: steps 10…14 fade 8×8 in
    common = ["model=progan", "model.phase_images=160", "trainer.checkpoint_every=12"] + TINY
    full = train(compose(common + ["trainer.steps=14"]), tmp_path / "full")
    train(compose(common + ["trainer.steps=12"]), tmp_path / "part")
    state = checkpoint.load(tmp_path / "part" / "checkpoints" / "last.pt")
    assert int(state["networks"]["trained_step"]) == 11  # 12 steps done: steps 0…11, mid-fade
    weight = perturbed_copy(tmp_path / "part", tmp_path / "perturbed")
    ends = {}
    for run in ("part", "perturbed"):
        resumed = compose([f"resume={tmp_path / run}", "trainer.steps=14", "override_resume=true"])
        with counting_steps() as taken:
            ends[run] = train(resumed, tmp_path / run, overrides=["trainer.steps=14", "override_resume=true"])
        assert taken == [12, 13]  # the resumed leg: the last two steps only
    part = ends["part"]
    assert part["growth/resolution"] == full["growth/resolution"] == 8
    assert part["growth/alpha"] == full["growth/alpha"] == pytest.approx(0.6)
    assert part["loss/D"] == full["loss/D"] and part["loss/G"] == full["loss/G"]
    networks = {run: checkpoint.load(tmp_path / run / "checkpoints" / "last.pt")["networks"] for run in ("full", "part", "perturbed")}
    assert all(torch.equal(networks["full"][k], networks["part"][k]) for k in networks["full"])
    assert not torch.equal(networks["perturbed"][weight], networks["full"][weight])  # it continued the checkpoint

    cfg = compose(common + ["trainer.steps=14"])
    build_data(cfg)
    family = build_family(cfg)
    family.load_state_dict(state["networks"])
    assert family.stage() == (1, pytest.approx(0.2))  # the checkpoint of step 11 samples at its own stage


def _equalized_roles(network: str, name: str, layer: nn.Module) -> tuple[str, float, float]:
    """(role, gain, lr multiplier) the papers' code gives a layer: He's gain √2 except toRGB, the styles' affine
    maps and D's output (1) and ProGAN G's first dense layer (√2/4); StyleGAN's mapping network lr_mul 0.01."""
    if isinstance(layer, nn.Linear):
        if name.startswith("mapping."):
            return "mapping", math.sqrt(2), 0.01
        if name.endswith("adain.affine"):
            return "affine", 1.0, 1.0
        if layer.out_features == 1:
            return "output", 1.0, 1.0
        return ("dense", math.sqrt(2) / 4, 1.0) if network == "G" else ("dense", math.sqrt(2), 1.0)
    if layer.kernel_size == (1, 1):
        return ("toRGB", 1.0, 1.0) if network == "G" else ("fromRGB", math.sqrt(2), 1.0)
    assert layer.kernel_size == (3, 3), name
    return "conv3x3", math.sqrt(2), 1.0


@pytest.mark.parametrize("model", ["progan", "stylegan"])
def test_every_conv_and_linear_of_both_networks_uses_the_equalized_learning_rate(compose, model):
    """§4.1: each layer's weight is its stored N(0, 1/lr_mul²) tensor times c = lr_mul·gain/√fan_in (its bias
    times lr_mul), fan_in from the layer's own shape; no Conv2d/Linear is left without it (counted per role)."""
    cfg = compose([f"model={model}", *(["model.generator.mapping_layers=2"] if model == "stylegan" else []), *TINY])
    build_data(cfg)
    family = build_family(cfg)
    n = family.networks["generator"].max_level + 1  # resolutions 4 … 16
    expected = {
        "progan": {"G": {"dense": 1, "conv3x3": 2 * n - 1, "toRGB": n}},
        "stylegan": {"G": {"mapping": 2, "affine": 2 * n, "conv3x3": 2 * n - 1, "toRGB": n}},
    }[model]
    expected["D"] = {"fromRGB": n, "conv3x3": 2 * n - 1, "dense": 1, "output": 1}
    for key, network in (("G", family.networks["generator"]), ("D", family.networks["discriminator"])):
        roles = {}
        for name, layer in network.named_modules():
            if not isinstance(layer, (nn.Conv2d, nn.Linear)):
                continue
            role, gain, lr_mul = _equalized_roles(key, name, layer)
            roles[role] = roles.get(role, 0) + 1
            fan_in = layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels * math.prod(layer.kernel_size)
            c = lr_mul * gain / math.sqrt(fan_in)
            assert nn.utils.parametrize.is_parametrized(layer, "weight"), f"{model} {key}.{name} has no equalized lr"
            (scale,) = layer.parametrizations.weight
            assert scale.scale == pytest.approx(c, rel=1e-12), f"{model} {key}.{name}"
            stored = layer.parametrizations.weight.original
            assert torch.allclose(layer.weight, stored * c, rtol=1e-6, atol=0), f"{model} {key}.{name}"
            k = stored.numel()
            assert abs(stored.std().item() * lr_mul - 1) < 5 / math.sqrt(2 * k), f"{model} {key}.{name}: not N(0, 1/lr_mul²)"
            assert abs(stored.mean().item() * lr_mul) < 5 / math.sqrt(k), f"{model} {key}.{name}"
            if layer.bias is None:
                continue
            assert nn.utils.parametrize.is_parametrized(layer, "bias") == (lr_mul != 1.0), f"{model} {key}.{name}"
            if lr_mul != 1.0:
                (bias_scale,) = layer.parametrizations.bias
                assert bias_scale.scale == lr_mul
            initial = torch.zeros_like(layer.bias)
            if role == "affine":  # y_s starts at 1, y_b at 0
                initial[: len(initial) // 2] = 1.0
            assert torch.equal(layer.bias, initial), f"{model} {key}.{name}"
        assert roles == expected[key], f"{model} {key}"


def _with_gradient_penalty_grads(f, x, params):
    """f(x), ∂(Σ f²)/∂x and the gradients of a WGAN-GP-like loss Σf + Σ(∂(Σ f²)/∂x)² (a double backward)."""
    x = x.detach().requires_grad_(True)
    y = f(x)
    (dx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    grads = torch.autograd.grad(y.sum() + dx.square().sum(), [x, *params])
    return [y, dx, *grads]


def test_fused_down_convolution_equals_conv3x3_then_average_pooling_with_gradients_and_their_gradients():
    """The 4×4 stride-2 kernel ¼ Σ_a w₃(t − a) is the 3×3 convolution followed by 2×2 average pooling (Karras et
    al.'s fused conv2d_downscale2d): the same outputs, input gradients and second-order gradients."""
    torch.manual_seed(0)
    down = equalized(DownConv2d(5, 7))
    with torch.no_grad():
        down.bias.normal_()
    unfused = lambda x: F.avg_pool2d(F.conv2d(x, down.weight, down.bias, padding=1), 2)  # noqa: E731
    stored = [down.parametrizations.weight.original, down.bias]
    x = torch.randn(3, 5, 8, 8)
    fused_terms, unfused_terms = _with_gradient_penalty_grads(down, x, stored), _with_gradient_penalty_grads(unfused, x, stored)
    assert fused_terms[0].shape == (3, 7, 4, 4)
    for fused, reference in zip(fused_terms, unfused_terms):
        assert torch.allclose(fused, reference, rtol=1e-5, atol=1e-5)


def test_blur_is_the_depthwise_121_filter_with_zero_padding_with_gradients_and_their_gradients():
    """B_H·x·B_W equals the grouped convolution with [1 2 1]ᵀ[1 2 1]/16 (padding 1), also on non-square maps."""
    x = torch.randn(2, 3, 8, 16)
    kernel = torch.tensor([1.0, 2.0, 1.0])
    kernel = (kernel[:, None] * kernel[None, :] / 16).expand(3, 1, 3, 3)
    reference = lambda x: F.conv2d(x, kernel, padding=1, groups=3)  # noqa: E731
    for blurred, expected in zip(_with_gradient_penalty_grads(Blur(), x, []), _with_gradient_penalty_grads(reference, x, [])):
        assert torch.allclose(blurred, expected, rtol=1e-5, atol=1e-6)
    corner = Blur()(torch.ones(1, 1, 4, 4))[0, 0]
    assert corner[0, 0] == pytest.approx(9 / 16) and corner[1, 1] == pytest.approx(1.0) and corner[0, 1] == pytest.approx(12 / 16)
