"""SPADE (Park et al. 2019): the normalization of Eq. 1 (zero γ/β convs give the plain normalization; out =
norm(x)·(1 + γ) + β), the map's influence confined to the convolutions' receptive field, the official generator's
layout and discriminator differences, the optional VGG loss, the segmenter's mIoU, and end-to-end runs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gantrain.cli import train
from gantrain.errors import ConfigError
from gantrain.metrics.segmenter import SegmenterNet, segmentation_scores
from gantrain.models.patchgan import MultiScale, PatchGAN, receptive_field
from gantrain.models.spade import SPADE, SPADEDiscriminator, SPADEGenerator, SPADEResBlock
from gantrain.models.vgg_loss import WEIGHTS, VGGLoss

from conftest import assert_three_plus_three_equals_six


def one_hot(maps: torch.Tensor, classes: int) -> torch.Tensor:
    return F.one_hot(maps, classes).permute(0, 3, 1, 2).float()


def random_map(n=2, size=12, classes=4, seed=0):
    return torch.randint(0, classes, (n, size, size), generator=torch.Generator().manual_seed(seed))


def zero_(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_spade_with_zero_gamma_beta_convs_is_the_plain_normalization_and_gamma_scales_by_one_plus_gamma(norm):
    x = torch.randn(4, 6, 8, 8) * 3 + 1
    spade = SPADE(6, 4, hidden=16, norm=norm)
    zero_(spade.gamma), zero_(spade.beta)
    plain = F.batch_norm(x, None, None, training=True) if norm == "batch" else F.instance_norm(x)
    for seed in range(3):  # any map, also at another resolution (resized by nearest neighbour)
        segmap = one_hot(random_map(4, 8 * (seed + 1), seed=seed), 4)
        assert torch.allclose(spade(x, segmap), plain, atol=1e-5)
    nn.init.ones_(spade.gamma.bias)  # γ = 1 everywhere: out = norm(x)·(1 + 1)
    nn.init.constant_(spade.beta.bias, -0.5)
    assert torch.allclose(spade(x, segmap), 2 * plain - 0.5, atol=1e-5)


def changed_region(out_a: torch.Tensor, out_b: torch.Tensor) -> torch.Tensor:
    return (out_a - out_b).abs().amax(dim=(0, 1)) > 0


def test_a_local_map_change_changes_the_output_only_within_the_receptive_field():
    torch.manual_seed(0)
    maps = random_map(1, 16, seed=1)
    changed = maps.clone()
    changed[0, 7:9, 7:9] = (maps[0, 7:9, 7:9] + 1) % 4  # a 2×2 region, pixels 7…8
    x = torch.randn(1, 8, 16, 16)
    spade = SPADE(8, 4, hidden=16, norm="instance")
    for p in spade.parameters():  # away from the 0.02 init, so every reachable pixel visibly changes
        nn.init.normal_(p)
    # SPADE: the shared 3×3 conv, then the 3×3 γ/β convs; the normalization of x does not see the map
    field = receptive_field(nn.Sequential(spade.shared, spade.gamma))
    assert field == 5
    reach = torch.zeros(16, 16, dtype=torch.bool)
    r = field // 2
    reach[7 - r : 9 + r, 7 - r : 9 + r] = True
    with torch.no_grad():
        assert torch.equal(changed_region(spade(x, one_hot(maps, 4)), spade(x, one_hot(changed, 4))), reach)
    # a residual block (running statistics, as at test time): SPADE → 3×3 conv → SPADE → 3×3 conv
    block = SPADEResBlock(8, 6, 4, hidden=16, norm="batch").eval()
    with torch.no_grad():
        for p in block.parameters():
            nn.init.normal_(p, std=0.3)
        out = changed_region(block(x, one_hot(maps, 4)), block(x, one_hot(changed, 4)))
    field = receptive_field(nn.Sequential(block.norm_0.shared, block.norm_0.gamma, block.conv_0, block.conv_1))
    r = field // 2
    assert field == 9 and out.nonzero().min() >= 7 - r and out.nonzero().max() <= 8 + r
    assert out[7 - r, 7 - r] and out[8 + r, 8 + r]  # and it does reach that far


def test_the_generator_has_the_official_layout_and_the_discriminator_spades_differences():
    # 256 px: the official 'normal' generator: 8×8 bottom, head 16·ngf, two 16·ngf blocks at 16 px, then 8, 4, 2,
    # 1 · ngf, one per doubling (ngf 4 here, the paper's 64); the learned shortcut exactly where channels change
    g = SPADEGenerator(label_channels=5, channels=3, image_size=256, width=4, hidden=8)
    widths = [(b.conv_0.in_channels, b.conv_1.out_channels) for b in g.blocks]
    assert g.bottom == 8 and widths == [(4 * a, 4 * b) for a, b in [(16, 16), (16, 16), (16, 16), (16, 8), (8, 4), (4, 2), (2, 1)]]
    assert g.upsample_before == [False, True, False, True, True, True, True]
    assert [b.learned_shortcut for b in g.blocks] == [False, False, False, True, True, True, True]
    assert g.blocks[3].conv_0.out_channels == 32  # fmiddle = min(fin, fout)
    assert all(hasattr(b.conv_0, "parametrizations") and hasattr(b.conv_1, "parametrizations") for b in g.blocks)
    assert SPADEGenerator(5, image_size=32).blocks[0].norm_0.shared[0].out_channels == 128 and not g.blocks[0].norm_0.norm.affine
    small = SPADEGenerator(label_channels=4, image_size=32, width=4, hidden=8)
    assert small.bottom == 4 and small(one_hot(random_map(2, 32), 4)).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="multiple of 2\\^3"):
        SPADEGenerator(4, image_size=36)
    # D: the PatchGAN (n_layers 3 = SPADE's n_layers_D 4) with padding 2, spectral norm and no bias between first and last
    d = SPADEDiscriminator(condition_channels=4, channels=3, width=8)
    assert isinstance(d, MultiScale) and len(d.scales) == 2 and isinstance(d.scales[0], PatchGAN)
    convs = [b[0] for b in d.scales[0].blocks]
    assert [c.padding for c in convs] == [(2, 2)] * 5 and [c.stride for c in convs] == [(2, 2)] * 3 + [(1, 1)] * 2
    assert [hasattr(c, "parametrizations") for c in convs] == [False, True, True, True, False]
    assert [c.bias is None for c in convs] == [False, True, True, True, False]
    features = d.features(torch.randn(2, 7, 32, 32))
    assert [f[-1].shape[-1] for f in features] == [7, 5]  # 32 → 17 → 9 → 5 → 6 → 7; the half scale 16 → … → 5


def test_the_vgg_loss_weighs_relu1_to_relu5_as_the_official_code_and_needs_a_local_file(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    path = tmp_path / "vgg19.pth"  # a randomly initialized vgg19's convolutions, named as in its state dict: no download
    torch.save({f"features.{k}": v for k, v in make_layers(cfgs["E"]).state_dict().items()}, path)
    loss = VGGLoss(str(path))
    assert not any(p.requires_grad for p in loss.parameters())
    x, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    fx, fy = loss.features(x), loss.features(y)
    assert [f.shape[1] for f in fx] == [64, 128, 256, 512, 512] and all((f >= 0).all() for f in fx)  # after the ReLUs
    expected = sum(w * (a - b).abs().mean() for w, a, b in zip((1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0), fx, fy))
    assert WEIGHTS == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0) and torch.allclose(loss(x, y), expected) and loss(x, x) == 0
    loss.train()
    assert not loss.training
    with pytest.raises(ConfigError, match="model.vgg_weights='missing.pth' does not exist"):
        VGGLoss("missing.pth")


def test_miou_and_pixel_accuracy_in_closed_form():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 9]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 2, 0, 0]])
    # ignoring 9: class 0: TP 1, FP 1, FN 1 → 1/3; class 1: TP 2, FP 1 → 2/3; class 2: TP 2, FN 1 → 2/3
    scores = segmentation_scores(pred, target, 3, ignore_index=9)
    assert scores["mIoU"] == pytest.approx((1 / 3 + 2 / 3 + 2 / 3) / 3) and scores["pixel_accuracy"] == pytest.approx(5 / 7)
    # a class in neither prediction nor target is not averaged; a perfect prediction scores 1
    assert segmentation_scores(target.clamp(max=2), target.clamp(max=2), 5) == {"mIoU": 1.0, "pixel_accuracy": 1.0}
    net = SegmenterNet(3, 4, width=4)
    assert net(torch.randn(2, 3, 12, 12)).shape == (2, 4, 12, 12)


TINY = [
    "model=spade",
    "dataset=shapes2texture",
    "dataset.image_size=16",
    "dataset.source.train_size=48",
    "dataset.source.heldout_size=16",
    "model.generator.width=2",
    "model.generator.hidden=8",
    "model.discriminator.width=4",
    "trainer.batch_size=8",
    "trainer.log_every=1",
    "trainer.num_samples=8",
]


def test_spade_on_shapes2texture_trains_with_the_segmenters_miou(compose, tmp_path):
    overrides = TINY + [
        "trainer.steps=2",
        "trainer.eval_every=2",
        "trainer.sample_every=2",
        "trainer.checkpoint_every=100",
        "eval.num_samples=16",
        "eval.batch_size=16",
        "eval.segmenter.epochs=1",
        "eval.segmenter.width=4",
    ]
    scores = train(compose(overrides), tmp_path / "run")
    assert {"loss/G", "loss/D", "loss/feature_matching", "mIoU/segmenter", "pixel_accuracy/segmenter", "PSNR/pixels"} <= set(scores)
    assert 0 <= scores["mIoU/segmenter"] <= 1 and 0 <= scores["pixel_accuracy/segmenter"] <= 1
    assert (tmp_path / "run" / "samples" / "translation_step_0000002.png").is_file()


def test_resume_after_three_steps_equals_six_uninterrupted_steps(tmp_path):
    assert_three_plus_three_equals_six(TINY, tmp_path)


def test_a_segmentation_folder_trains_two_steps(compose, tmp_path):
    from test_segmentation_data import write_folder

    root = write_folder(tmp_path / "data", n=10)
    overrides = [
        *[o for o in TINY if not o.startswith("dataset")],
        "dataset=segmentation_folder",
        f"dataset.root={root}",
        "dataset.num_classes=3",
        "dataset.image_size=16",
        "trainer.steps=2",
        "trainer.batch_size=4",
        "trainer.eval_every=0",
        "trainer.sample_every=100",
    ]
    logs = train(compose(overrides), tmp_path / "run")
    assert {"loss/G", "loss/D", "loss/feature_matching"} <= set(logs) and all(torch.isfinite(torch.tensor(v)) for v in logs.values())


def test_model_vgg_weights_adds_ten_times_the_perceptual_loss_to_g_and_keeps_vgg_out_of_the_checkpoint(compose, tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    from gantrain.cli import build_data, build_family

    path = tmp_path / "vgg19.pth"  # random weights named as torchvision's: no download
    torch.save({f"features.{k}": v for k, v in make_layers(cfgs["E"]).state_dict().items()}, path)
    cfg = compose(TINY + [f"model.vgg_weights={path}"])
    batch = build_data(cfg).train.tensors()
    torch.manual_seed(0)
    family = build_family(cfg)
    torch.manual_seed(1)
    loss, logs = family.loss("generator", {k: v[:4] for k, v in batch.items()}, 0)
    expected = logs["loss/G"] + 10.0 * logs["loss/feature_matching"] + 10.0 * logs["loss/vgg"]
    assert logs["loss/vgg"] > 0 and torch.allclose(loss.detach(), expected)
    assert not any("slices" in k for k in family.state_dict())  # the frozen ImageNet weights are never checkpointed
    with pytest.raises(ConfigError, match="model.vgg_weights=.*does not exist"):
        build_family(compose(TINY + ["model.vgg_weights=missing.pth"]))
