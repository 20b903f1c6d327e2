"""pix2pix (Isola et al. 2017) and the paired-translation family: the official networks' sizes and structure, the
losses against hand computation (Eq. 4, D halved; SPADE's hinge + feature matching over scales), dropout as
test-time noise, and end-to-end runs with the paired metrics and exact resume."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gantrain import checkpoint
from gantrain.cli import train
from gantrain.errors import ConfigError
from gantrain.families.paired import PairedTranslationFamily, one_hot_map
from gantrain.losses import hinge, nonsaturating
from gantrain.models.patchgan import MultiScale, PatchGAN, receptive_field
from gantrain.models.pix2pix import Dropout, UNetGenerator, conditional_patchgan

from conftest import assert_three_plus_three_equals_six, grouped


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_official_configurations_have_their_parameter_counts_and_the_patchgan_its_receptive_fields():
    with torch.device("meta"):
        assert n_params(UNetGenerator(3, 3, 256, width=64, norm="batch")) == 54_413_955  # unet_256
        d = conditional_patchgan(3, 3, width=64, n_layers=3, norm="batch")
    assert n_params(d) == 2_768_705 and receptive_field(d) == 70
    assert receptive_field(PatchGAN(6, 8, n_layers=1)) == 16
    assert PatchGAN(6, 4, n_layers=3)(torch.zeros(1, 6, 256, 256)).shape == (1, 1, 30, 30)


def _dropouts(g: UNetGenerator) -> list[Dropout]:
    return [m for m in g.modules() if isinstance(m, Dropout)]


def test_the_unet_goes_down_to_1x1_with_dropout_on_the_8ngf_blocks_but_the_innermost():
    assert [len(_dropouts(UNetGenerator(3, 3, size, width=1))) for size in (32, 64, 128, 256)] == [0, 1, 2, 3]
    g = UNetGenerator(1, 1, 32, width=2)
    shapes = []
    g.apply(lambda m: m.register_forward_hook(lambda m, i, o: shapes.append(o.shape)) if isinstance(m, nn.Conv2d) else None)
    g(torch.randn(2, 1, 32, 32))
    assert [s[-1] for s in shapes] == [16, 8, 4, 2, 1] and shapes[-1][1] == 16  # 5 downs to 1×1 of 8·ngf
    with pytest.raises(ValueError, match="image_size=24 is no multiple of 2\\^5"):
        UNetGenerator(1, 1, 24, num_downs=5)
    with pytest.raises(ValueError, match="at least 5 times .*image_size=16 allows 4"):
        UNetGenerator(1, 1, 16)


def test_the_skips_carry_the_input_past_a_cut_bottleneck():
    """With the innermost block's output forced to zero, only the concatenated skips carry information: the
    output still depends on the input, and a change in one corner changes only nearby outputs."""
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, 32, width=2).eval()
    innermost = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)][0]
    nn.init.zeros_(innermost.weight)
    x = torch.randn(2, 1, 32, 32)
    y = x.clone()
    y[:, :, :4, :4] += 1.0
    with torch.no_grad():
        a, b = g(x), g(y)
    changed = (a - b).abs() > 1e-6
    assert changed[:, :, :4, :4].any() and not changed[:, :, 16:, 16:].any()


def test_dropout_at_test_time_keeps_outputs_random_and_off_makes_them_equal():
    x = torch.randn(2, 1, 64, 64)
    for at_test in (True, False):
        torch.manual_seed(0)
        g = UNetGenerator(1, 1, 64, width=2, dropout_at_test=at_test).eval()
        with torch.no_grad():
            first, second = g(x), g(x)
        assert torch.equal(first, second) is not at_test


def tiny_pix2pix(**options) -> PairedTranslationFamily:
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, 32, width=2)
    d = conditional_patchgan(1, 1, width=2, n_layers=2)
    return PairedTranslationFamily("pix2pix", g, d, nonsaturating(), **options)


def test_pix2pix_losses_are_eq4_with_lambda_100_and_half_the_bce_for_d():
    family = tiny_pix2pix()
    x, y = torch.rand(4, 1, 32, 32) * 2 - 1, torch.rand(4, 1, 32, 32) * 2 - 1
    batch = {"source": x, "image": y}
    g, d = family.networks["generator"], family.networks["discriminator"]
    with torch.no_grad():
        fake = g(x)
        on_fake, on_real = d(torch.cat([x, fake], 1)), d(torch.cat([x, y], 1))
    bce = F.binary_cross_entropy_with_logits
    expected_g = bce(on_fake, torch.ones_like(on_fake)) + 100 * (fake - y).abs().mean()
    expected_d = 0.5 * (bce(on_real, torch.ones_like(on_real)) + bce(on_fake, torch.zeros_like(on_fake)))
    g_loss, g_logs = family.loss("generator", batch, 0)
    d_loss, d_logs = family.loss("discriminator", batch, 0)
    assert torch.allclose(g_loss, expected_g, rtol=1e-6) and torch.allclose(d_loss, expected_d, rtol=1e-6)
    assert torch.allclose(g_logs["loss/L1"], (fake - y).abs().mean()) and torch.allclose(d_logs["loss/D"], 2 * expected_d)
    d_loss.backward()  # D's loss reaches D only: the fakes it judges are made without G's graph
    assert all(p.grad is None for p in g.parameters()) and all(p.grad is not None for p in d.parameters())


def test_segmentation_conditions_are_one_hot_with_the_ignored_class_all_zeros():
    labels = torch.tensor([[[0, 2], [255, 1]]])
    codes = one_hot_map(labels, 3, ignore_index=255)
    assert codes.shape == (1, 3, 2, 2) and codes[0, :, 1, 0].eq(0).all()
    assert torch.equal(codes.argmax(1)[labels != 255], labels[labels != 255]) and codes.sum(1)[labels != 255].eq(1).all()
    with pytest.raises(ConfigError, match="class 3 but model.condition_classes=3"):
        one_hot_map(torch.tensor([[[3]]]), 3)


def test_spade_style_losses_hinge_multiscale_feature_matching_averaged_over_scales():
    torch.manual_seed(0)
    k = 3
    g = nn.Sequential(nn.Conv2d(k, 3, 1), nn.Tanh())
    d = MultiScale(lambda: PatchGAN(k + 3, 4, n_layers=1, norm="instance"), num_scales=2)
    family = PairedTranslationFamily(
        "spade",
        g,
        d,
        hinge(),
        condition="segmentation",
        condition_classes=k,
        ignore_index=255,
        l1_weight=0.0,
        feature_matching_weight=10.0,
        d_loss_factor=1.0,
    )
    seg = torch.randint(k, (2, 16, 16))
    seg[0, :4] = 255
    y = torch.rand(2, 3, 16, 16) * 2 - 1
    x = one_hot_map(seg, k, 255)
    with torch.no_grad():
        fake = g(x)
        fakes, reals = d.features(torch.cat([x, fake], 1)), d.features(torch.cat([x, y], 1))
    adversarial = sum(-f[-1].mean() for f in fakes) / 2
    matching = sum(sum((a - b).abs().mean() for a, b in zip(f[:-1], r[:-1])) for f, r in zip(fakes, reals)) / 2
    d_expected = sum(F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean() for f, r in zip(fakes, reals)) / 2
    g_loss, logs = family.loss("generator", {"segmentation": seg, "image": y}, 0)
    assert torch.allclose(g_loss, adversarial + 10 * matching, rtol=1e-5) and float(logs["loss/feature_matching"]) > 0
    assert torch.allclose(family.loss("discriminator", {"segmentation": seg, "image": y}, 0)[0], d_expected, rtol=1e-5)
    preview = family.previews(g, {"segmentation": seg}, {"image": y})["translation"]
    assert list(preview.column_labels) == ["input", "output", "target"]
    panels = grouped(preview)  # sample × (input, output, target)
    assert panels.shape == (2, 3, 3, 16, 16) and panels[0, 0, :, :4].eq(-1).all()  # the ignored class in black
    held = {"segmentation": seg, "image": y}
    assert torch.equal(family.targets(family.fixed_inputs(2, torch.Generator(), held), held)["segmentation"], seg)


def test_the_family_says_what_each_translation_should_be_and_translates_single_batches():
    family = tiny_pix2pix(l1_weight=100.0)
    heldout = {"source": torch.zeros(3, 1, 32, 32), "image": torch.ones(3, 1, 32, 32), "label": torch.tensor([4, 5, 6])}
    inputs = family.fixed_inputs(3, torch.Generator(), heldout)
    assert set(family.targets(inputs, heldout)) == {"image", "label"} and torch.equal(
        family.targets(inputs, heldout)["label"], heldout["label"]
    )
    family.eval()
    assert torch.equal(family.translate(heldout["source"]), family.generate(inputs))
    panels = grouped(family.previews(family.networks["generator"], inputs, heldout)["translation"])
    assert (
        panels.shape == (3, 3, 1, 32, 32) and torch.equal(panels[:, 0], heldout["source"]) and torch.equal(panels[:, 2], heldout["image"])
    )
    assert torch.equal(panels[:, 1], family.generate(inputs))
    with pytest.raises(ValueError, match="N×C×H×W images"):
        family.translate(torch.zeros(32, 32))


TINY = [
    "model=pix2pix",
    "dataset=edges2digits",
    "model.generator.width=2",
    "model.discriminator.width=2",
    "trainer.batch_size=8",
    "trainer.log_every=1",
    "trainer.num_samples=4",
]


def test_pix2pix_on_edges2digits_trains_end_to_end_with_the_paired_metrics(compose, tmp_path):
    overrides = TINY + [
        "trainer.steps=2",
        "trainer.eval_every=2",
        "trainer.sample_every=2",
        "eval.num_samples=16",
        "eval.batch_size=16",
        "eval.classifier.epochs=1",
        "eval.classifier.width=4",
        "eval.classifier.feature_dim=16",
        "eval.best_metric=PSNR",  # a paired metric picks the best checkpoint
    ]
    scores = train(compose(overrides), tmp_path / "run")  # the last logs and the last evaluation's metrics
    assert {"loss/G", "loss/L1", "loss/D", "L1/pixels", "PSNR/pixels", "SSIM/pixels", "class_accuracy/classifier"} <= set(scores)
    assert 0 < scores["L1/pixels"] < 2 and 0 <= scores["class_accuracy/classifier"] <= 1
    assert (tmp_path / "run" / "samples" / "translation_step_0000002.png").is_file()
    best = checkpoint.load(tmp_path / "run" / "checkpoints" / "best.pt")
    assert best["metrics"]["PSNR/pixels"] == pytest.approx(scores["PSNR/pixels"])


def test_resume_after_three_steps_equals_six_uninterrupted_steps(tmp_path):
    assert_three_plus_three_equals_six(TINY, tmp_path)


def test_regularizers_see_ds_input_as_condition_and_image_and_every_scales_logits():
    from gantrain.regularizers import GradientPenalty, SpectralNorm

    torch.manual_seed(0)
    d = MultiScale(lambda: PatchGAN(2, 4, n_layers=1, norm="none"), num_scales=2)
    g = nn.Conv2d(1, 1, 1)
    family = PairedTranslationFamily("gp", g, d, hinge(), regularizers={"gp": GradientPenalty(10.0)}, d_loss_factor=1.0)
    batch = {"source": torch.randn(4, 1, 16, 16), "image": torch.randn(4, 1, 16, 16)}
    loss, logs = family.loss("discriminator", batch, 0)
    assert float(logs["penalty/gp"]) > 0 and torch.allclose(loss, logs["loss/D"] + logs["penalty/gp"])
    sn = PairedTranslationFamily(
        "sn", nn.Conv2d(1, 1, 1), conditional_patchgan(1, 1, 4, 1, "none"), hinge(), regularizers={"sn": SpectralNorm()}
    )
    assert any(hasattr(m, "parametrizations") or hasattr(m, "weight_orig") for m in sn.networks["discriminator"].modules())
