"""DiffAugment (Zhao et al. 2020): each transformation against its definition, differentiable, drawn per sample,
and applied by the regularizer to every discriminator input in training mode only."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gantrain import cli, losses
from gantrain.augment import DiffAugment, color, cutout, translation
from gantrain.families.gan import GANFamily
from gantrain.models import dcgan


def images(n: int = 64, c: int = 1, size: int = 16) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(n, c, size, size, dtype=torch.float64) + 1.0  # no zeros: a 0 in the output was put there


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x moved dy rows down and dx columns right, zeros shifted in."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (abs(dx), abs(dx), abs(dy), abs(dy)))
    return padded[..., abs(dy) - dy : abs(dy) - dy + h, abs(dx) - dx : abs(dx) - dx + w]


def test_translation_shifts_each_sample_by_its_own_whole_number_of_pixels_up_to_the_ratio():
    x = images()
    torch.manual_seed(0)
    out = translation(x, ratio=0.125)  # up to 2 of 16 pixels each way
    found = []
    for sample, result in zip(x, out):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(shifted(sample, dy, dx), result)]
        assert len(matches) == 1, matches
        found.append(matches[0])
    assert len(set(found)) > 10  # 25 possible shifts, each sample drawn on its own
    assert {dy for dy, _ in found} == {dx for _, dx in found} == {-2, -1, 0, 1, 2}


def test_cutout_zeroes_one_square_of_the_ratio_a_side_centred_anywhere_per_sample():
    x = images()
    torch.manual_seed(0)
    out = cutout(x, ratio=0.5)  # a square of 8 × 8 pixels, cut where it leaves the image
    kept = out != 0
    assert torch.equal(out[kept], x[kept])
    holes = set()
    for mask in ~kept[:, 0]:
        rows, cols = mask.any(dim=1).nonzero().flatten(), mask.any(dim=0).nonzero().flatten()
        assert torch.equal(mask, mask.any(dim=1)[:, None] & mask.any(dim=0)[None, :])  # a rectangle
        assert len(rows) == rows[-1] - rows[0] + 1 <= 8 and len(cols) == cols[-1] - cols[0] + 1 <= 8
        # the square's centre (top + 4) is its first row + 4, or it was cut at the top edge (the first row is 0)
        assert (len(rows) == 8 or rows[0] == 0 or rows[-1] == 15) and (len(cols) == 8 or cols[0] == 0 or cols[-1] == 15)
        holes.add((rows[0].item(), cols[0].item()))
    assert len(holes) > 20


def test_color_is_brightness_saturation_and_contrast_with_the_papers_ranges():
    x = images(c=3)
    torch.manual_seed(0)
    out = color(x)
    torch.manual_seed(0)
    b, s, c = (torch.rand(len(x), 1, 1, 1, dtype=x.dtype) for _ in range(3))
    b, s, c = b - 0.5, 2 * s, c + 0.5  # U[−½, ½), U[0, 2), U[½, 3/2)
    y = x + b
    y = y.mean(1, keepdim=True) + s * (y - y.mean(1, keepdim=True))
    y = y.mean((1, 2, 3), keepdim=True) + c * (y - y.mean((1, 2, 3), keepdim=True))
    torch.testing.assert_close(out, y)
    assert len(set(b.flatten().tolist())) == len(x)  # drawn per sample


@pytest.mark.parametrize("policy", [["color"], ["translation"], ["cutout"], ["color", "translation", "cutout"]])
def test_the_augmentation_is_differentiable_in_its_input(policy):
    """G learns through T: the gradient of T(x) matches finite differences (the same draw each evaluation)."""
    augment = DiffAugment(policy)
    x = images(n=2, c=2, size=8).requires_grad_(True)

    def fixed_draw(x):
        torch.manual_seed(3)
        return augment(x)

    assert torch.autograd.gradcheck(fixed_draw, (x,))


class Recorder(nn.Module):
    """A discriminator that records its inputs."""

    def __init__(self):
        super().__init__()
        self.scale, self.seen = nn.Parameter(torch.ones(())), []

    def forward(self, x, condition=None):
        self.seen.append(x.detach().clone())
        return self.scale * x.flatten(1).mean(1)


def test_the_regularizer_augments_every_discriminator_input_in_training_only_and_g_learns_through_it():
    torch.manual_seed(0)
    discriminator = Recorder()
    family = GANFamily(
        "dcgan",
        dcgan.Generator(latent_dim=4, channels=1, image_size=16, width=8),
        discriminator,
        losses.nonsaturating(),
        latent_dim=4,
        regularizers={"diffaugment": DiffAugment(["cutout"])},
    )
    real = images(n=8).float()
    family.train()
    family.loss("discriminator", {"image": real}, step=0)
    loss, _ = family.loss("generator", {"image": real}, step=0)
    on_real, on_fake, on_fake_for_g = discriminator.seen
    assert (on_real == 0).any() and torch.equal(on_real[on_real != 0], real[on_real != 0])  # cut out, else unchanged
    assert all(((seen == 0).flatten(1).sum(1) >= 16).all() for seen in (on_real, on_fake, on_fake_for_g))  # ≥ a 4 × 4 hole each
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in family.networks["generator"].parameters() if p.dim() > 1)
    discriminator.seen.clear()
    family.eval()
    family.loss("discriminator", {"image": real}, step=1)
    assert torch.equal(discriminator.seen[0], real)


def test_bad_settings_and_non_image_inputs_are_refused():
    for kwargs in ({"policy": ["flip"]}, {"policy": []}, {"translation": 0.0}, {"cutout": 1.5}):
        with pytest.raises(ValueError, match="regularizer\\.diffaugment\\."):
            DiffAugment(**kwargs)
    with pytest.raises(ValueError, match="images"):
        DiffAugment()(torch.zeros(4, 2))


def test_regularizer_diffaugment_trains_dcgan_on_digits(compose, tmp_path):
    small = ["trainer.steps=2", "trainer.batch_size=8", "trainer.log_every=1", "trainer.eval_every=0", "trainer.num_samples=4"]
    cfg = compose(["regularizer=diffaugment", *small, "model.generator.width=8", "model.discriminator.width=8"])
    assert cfg.regularizer.diffaugment.policy == ["color", "translation", "cutout"]
    logs = cli.train(cfg, tmp_path / "run")
    assert math.isfinite(logs["loss/D"]) and math.isfinite(logs["loss/G"])
