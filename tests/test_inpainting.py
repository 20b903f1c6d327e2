"""Context-encoder inpainting (Pathak et al. 2016) and inpainting masks: the composite keeps the context exactly,
Eq. 5's reconstruction is confined to hole + rim with the official 10× rim weight, masks are fixed functions of
(seed, split, index), the CLI trains/evaluates/resumes exactly, and the biharmonic baseline fills smoothly."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from gantrain import checkpoint
from gantrain.cli import build_data, train
from gantrain.data.masks import MaskedDataset, MaskSpec, biharmonic_fill, fill_hole, masked, rim
from gantrain.errors import ConfigError
from gantrain.families.inpainting import InpaintingFamily
from gantrain.losses import nonsaturating
from gantrain.models.context_encoder import ContextEncoder, RegionDiscriminator

DIGITS = "gantrain.data.digits.digits"


def tiny_family(kind="centre", size=16, overlap=2) -> InpaintingFamily:
    torch.manual_seed(0)
    g = ContextEncoder(1, size, width=8, bottleneck=16)
    return InpaintingFamily(
        "context_encoder", g, lambda size: RegionDiscriminator(1, size, width=8), nonsaturating(), {"kind": kind}, size, overlap
    )


def digit_batch(kind="centre", size=16) -> dict:
    return masked(DIGITS, {"kind": kind, "size": 0.5, "seed": 1}, image_size=size).heldout.tensors()


# ------------------------------------------------------------------ masks
def test_the_centre_mask_is_the_central_square_of_half_the_side_for_every_sample():
    bundle = masked(DIGITS, {"kind": "centre", "size": 0.5}, image_size=32)
    for split in (bundle.train, bundle.heldout):
        mask = split.tensors()["mask"]
        assert mask.dtype == torch.bool and mask.shape == (len(split), 1, 32, 32)
        expected = torch.zeros(32, 32, dtype=torch.bool)
        expected[8:24, 8:24] = True
        assert torch.equal(mask, expected.expand_as(mask))
    assert bundle.spec.fields == {"image": (1, 32, 32), "label": (), "mask": (1, 32, 32)}
    # the image field stays the full original
    assert torch.equal(bundle.heldout.tensors()["image"], masked(DIGITS, {}, image_size=32).heldout.tensors()["image"])


def test_random_masks_are_a_fixed_function_of_seed_split_and_index():
    spec = MaskSpec.of({"kind": "random", "size": 0.5, "seed": 3})
    bundle = masked(DIGITS, {"kind": "random", "size": 0.5, "seed": 3}, image_size=16)
    train, heldout = bundle.train.tensors()["mask"], bundle.heldout.tensors()["mask"]
    assert torch.equal(heldout, spec.masks(range(len(heldout)), 16, 16, split=1))  # the same at every build
    assert torch.equal(train, spec.masks(range(len(train)), 16, 16, split=0))
    assert not torch.equal(heldout, MaskSpec.of({"kind": "random", "seed": 4}).masks(range(len(heldout)), 16, 16, split=1))
    assert not torch.equal(train[: len(heldout)], heldout)  # the splits' holes are drawn apart
    for i in (0, 7, 100):  # one sample's mask alone is its mask in the whole split
        assert torch.equal(spec.masks([i], 16, 16, split=1)[0], heldout[i])
    assert len({m.numpy().tobytes() for m in heldout}) > 0.9 * len(heldout)  # each sample its own holes
    covered = heldout.float().mean((1, 2, 3))
    assert (covered >= 0.25).all() and (covered < 1).all()  # at least size² of the image, never all of it


class Listed(Dataset):
    """A source not held in memory: dict samples one at a time."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"image": torch.full((1, 16, 16), float(i))}


def test_a_dataset_not_in_memory_gets_the_same_masks_sample_by_sample():
    spec = MaskSpec.of({"kind": "random", "seed": 2})
    wrapped = MaskedDataset(Listed(), spec, 16, 16, split=0)
    assert all(torch.equal(wrapped[i]["mask"], spec.masks(range(5), 16, 16, split=0)[i]) for i in range(5))
    assert torch.equal(wrapped[3]["image"], Listed()[3]["image"])


@pytest.mark.parametrize(
    "mask, message",
    [
        ({"kind": "centre", "size": 1.0}, r"dataset.mask.size=1.0 must be a fraction in \(0, 1\)"),
        ({"kind": "centre", "size": 0}, r"dataset.mask.size=0 must be a fraction"),
        ({"kind": "circle"}, r"dataset.mask.kind='circle' is not a mask kind: choose centre or random"),
        ({"kind": "random", "seed": -1}, r"dataset.mask.seed=-1 must be a non-negative integer"),
        ({"kind": "centre", "shape": 2}, r"dataset.mask.shape is not a mask setting"),
    ],
)
def test_malformed_mask_settings_are_one_line_config_errors(mask, message):
    with pytest.raises(ConfigError, match=message) as err:
        MaskSpec.of(mask)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ the family
@pytest.mark.parametrize("kind", ["centre", "random"])
def test_the_composite_is_the_input_outside_the_hole_exactly_and_the_prediction_inside(kind):
    family, batch = tiny_family(kind), digit_batch(kind)
    with torch.no_grad():
        out = family.generate({"image": batch["image"], "mask": batch["mask"]})
        prediction = family.predict(batch["image"], batch["mask"])
    hole = batch["mask"].expand_as(out)
    assert torch.equal(out[~hole], batch["image"][~hole])
    assert torch.equal(out[hole], prediction[hole]) and not torch.equal(out[hole], batch["image"][hole])
    assert torch.equal(family.translate(batch["image"], mask=batch["mask"]), out)
    if kind == "centre":  # the dataset's hole by default
        assert torch.equal(family.translate(batch["image"]), out)


def test_the_encoder_sees_the_hole_filled_with_each_images_visible_mean():
    batch = digit_batch()
    filled = fill_hole(batch["image"], batch["mask"])
    hole = batch["mask"].expand_as(filled)
    visible_mean = [x[~m].mean() for x, m in zip(batch["image"], hole)]
    assert all(torch.allclose(f[m], v.expand(int(m.sum()))) for f, m, v in zip(filled, hole, visible_mean))
    assert torch.equal(filled[~hole], batch["image"][~hole])


@pytest.mark.parametrize("kind", ["centre", "random"])
def test_the_generator_loss_has_no_gradient_outside_hole_and_rim_and_ten_times_the_weight_on_the_rim(kind):
    family, batch = tiny_family(kind, overlap=2), digit_batch(kind)
    image, mask = batch["image"], batch["mask"]
    band = rim(mask, 2)
    assert band.any() and not (band & mask).any()
    # the whole generator loss (0.999·L_rec + 0.001·L_adv) through the prediction: nothing outside hole + rim
    prediction = (image + 0.5).requires_grad_(True)
    family.predict = lambda image, mask, network=None: prediction
    family.loss("generator", batch, 0)[0].backward()
    outside = ~(mask | band).expand_as(image)
    assert (prediction.grad[outside] == 0).all() and (prediction.grad[~outside] != 0).all()
    # L_rec alone with the same error everywhere: the rim's gradient is 10× the hole's, and its value is
    # the mean over hole + rim pixels of w·(error)², w = 1 in the hole, 10 on the rim
    prediction = (image + 0.5).requires_grad_(True)
    rec = family.reconstruction(prediction, image, mask)
    rec.backward()
    g_hole, g_rim = prediction.grad[mask.expand_as(image)], prediction.grad[band.expand_as(image)]
    assert torch.allclose(g_hole, g_hole[0].expand_as(g_hole)) and torch.allclose(g_rim, 10 * g_hole[0].expand_as(g_rim))
    n_hole, n_rim = int(mask.sum()), int(band.sum())
    assert rec.item() == pytest.approx(0.25 * (n_hole + 10 * n_rim) / (n_hole + n_rim), rel=1e-6)


def test_the_discriminator_judges_the_centre_region_of_hole_and_rim():
    family = tiny_family("centre", size=32, overlap=4)
    assert family.region == slice(4, 28)  # the 16 px hole at 8…24 grown by the 4 px rim
    batch = digit_batch("centre", size=32)
    prediction = torch.rand_like(batch["image"])
    judged = family.judged(prediction, batch["image"], batch["mask"])
    assert torch.equal(judged, prediction[..., 4:28, 4:28])  # the paper's D: the predicted region itself
    assert family.networks["discriminator"](judged).shape == (len(judged), 1)
    assert tiny_family("random").region == slice(0, 16)  # random holes: the whole image, prediction pasted


def test_the_context_encoder_is_the_official_encoder_decoder_scaled_to_its_size():
    net = ContextEncoder(3, 128, width=8, bottleneck=40)
    convs = [m for m in net.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 16, 32, 64, 40]  # train.lua: nef, nef, 2nef, 4nef, 8nef, nBottleneck
    assert [c.kernel_size for c in convs] == [(4, 4)] * 6 and [c.stride for c in convs] == [(2, 2)] * 5 + [(1, 1)]
    assert net(torch.zeros(2, 3, 128, 128)).shape == (2, 3, 128, 128)
    assert all(m.bias is None for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    with pytest.raises(ValueError, match="power of two"):
        ContextEncoder(1, 28)


# ------------------------------------------------------------------ baselines
def test_biharmonic_inpainting_fills_the_hole_smoothly_better_than_the_mean():
    batch = digit_batch("centre", size=32)
    image, mask = batch["image"][:1], batch["mask"][:1]
    filled = biharmonic_fill(image, mask)
    hole = mask.expand_as(image)
    assert torch.equal(filled[~hole], image[~hole])
    error = (filled - image)[hole].abs().mean()
    assert error < 0.8 * (fill_hole(image, mask) - image)[hole].abs().mean()
    ramp = torch.linspace(-1, 1, 32).expand(1, 1, 32, 32)  # a linear image is biharmonic: restored exactly
    assert torch.allclose(biharmonic_fill(ramp, mask), ramp, atol=1e-6)


# ------------------------------------------------------------------ the command line
TINY = [
    "model=context_encoder",
    "dataset=inpaint_digits",
    "dataset.image_size=16",
    "model.generator.width=8",
    "model.generator.bottleneck=16",
    "model.discriminator.width=8",
    "model.overlap=2",
    "trainer.batch_size=16",
    "trainer.log_every=1",
    "trainer.sample_every=3",
    "trainer.checkpoint_every=3",
    "trainer.eval_every=3",
    "trainer.num_samples=8",
    "eval.features=none",
    "eval.num_samples=32",
    "eval.batch_size=32",
]


def test_cli_trains_evaluates_the_hole_and_resumes_exactly(compose, tmp_path):
    logs = train(compose(TINY + ["trainer.steps=6"]), tmp_path / "full")
    assert {"L1/hole", "PSNR/hole", "L1/pixels", "PSNR/pixels", "loss/G_rec", "loss/D"} <= set(logs)
    # the samples are composites: no error outside the 8×8 hole of 16×16, so L1 over all pixels is ¼ of the hole's
    assert logs["L1/pixels"] == pytest.approx(logs["L1/hole"] * 64 / 256, rel=1e-5)
    assert (tmp_path / "full" / "samples" / "translation_step_0000006.png").is_file()
    train(compose(TINY + ["trainer.steps=3"]), tmp_path / "part")
    overrides = ["trainer.steps=6", "override_resume=true"]
    train(compose([f"resume={tmp_path / 'part'}", *overrides]), tmp_path / "part", overrides=overrides)
    full = checkpoint.load(tmp_path / "full" / "checkpoints" / "last.pt")["networks"]
    part = checkpoint.load(tmp_path / "part" / "checkpoints" / "last.pt")["networks"]
    assert full.keys() == part.keys() and all(torch.equal(full[k], part[k]) for k in full)


@pytest.mark.parametrize(
    "override, message",
    [
        ("dataset.mask.size=1.0", r"dataset.mask.size=1.0 must be a fraction in \(0, 1\)"),
        ("dataset.mask.kind=circle", r"dataset.mask.kind='circle' is not a mask kind"),
        ("model.overlap=2.5", r"model.overlap=2.5 must be"),
    ],
)
def test_a_malformed_mask_option_is_refused_in_one_line_before_any_data(compose, tmp_path, override, message, monkeypatch):
    monkeypatch.setattr("gantrain.cli.build_data", lambda cfg: pytest.fail("data built before the refusal"))
    with pytest.raises(ConfigError, match=message) as err:
        train(compose(TINY + [override]), tmp_path / "run")
    assert "\n" not in str(err.value)


def test_a_folder_of_ones_own_images_gets_random_holes_and_trains(compose, tmp_path):
    generator = torch.Generator().manual_seed(0)
    for i in range(24):
        pixels = (torch.rand(16, 16, 3, generator=generator) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    cfg = compose(
        [o for o in TINY if not o.startswith("dataset")]
        + [
            "dataset=inpaint_folder",
            f"dataset.root={tmp_path}",
            "dataset.image_size=16",
            "dataset.mask.kind=random",
            "trainer.eval_every=0",
        ]
        + ["trainer.steps=2"]
    )
    bundle = build_data(cfg)
    assert isinstance(bundle.train, MaskedDataset) and bundle.spec.fields["mask"] == (1, 16, 16)
    sample = bundle.train[5]
    assert sample["image"].shape == (3, 16, 16) and torch.equal(sample["mask"], MaskSpec.of({"kind": "random"}).masks([5], 16, 16, 0)[0])
    assert "loss/G_rec" in train(cfg, tmp_path / "run")


@pytest.mark.parametrize(
    "dataset, message", [("digits", "fills holes, but this dataset has no masks"), ("grid25", "this dataset gives points")]
)
def test_a_dataset_without_holes_is_refused_in_one_line(compose, tmp_path, dataset, message):
    with pytest.raises(ConfigError, match=rf"model=context_encoder with dataset={dataset}\b.*{message}") as err:
        train(compose([o for o in TINY if not o.startswith("dataset")] + [f"dataset={dataset}"]), tmp_path / "run")
    assert "\n" not in str(err.value)
