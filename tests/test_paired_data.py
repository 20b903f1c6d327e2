"""Paired data (gantrain/data/paired.py): pix2pix's folder layouts written by the tests, each trained two steps and
each malformed one refused in one line naming the file; the built-in tasks' pairs are what they say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gantrain.cli import train
from gantrain.data import take
from gantrain.data.images import LUMA
from gantrain.data.paired import edge_map, edges2digits, gray2color, paired_folder
from gantrain.errors import ConfigError

S = 32


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _pair(i: int) -> tuple[np.ndarray, np.ndarray]:
    """A (grey) and B (colour) of pair i: distinct constant images, so a swapped or mismatched pair shows."""
    return np.full((S, S), 10 * i, np.uint8), np.full((S, S, 3), (200 - 10 * i, 30, 90), np.uint8)


def side_by_side(root: Path, n: int, split: str = "") -> Path:
    for i in range(n):
        a, b = _pair(i)
        _save(root / split / f"{i}.png", np.concatenate([np.repeat(a[..., None], 3, 2), b], axis=1))
    return root


def separate(root: Path, names, split: str = "", b_first: bool = False) -> Path:
    for i, name in enumerate(names):
        a, b = _pair(i)
        a_dir, b_dir = (root / "A" / split, root / "B" / split) if b_first else (root / split / "A", root / split / "B")
        _save(a_dir / f"{name}.png", a)
        _save(b_dir / f"{name}.jpg" if name != "x" else b_dir / f"{name}.png", b)
    return root


def _unit(v) -> float:
    return v / 127.5 - 1


def test_side_by_side_images_split_into_source_and_target_and_btoa_swaps_them(tmp_path):
    root = side_by_side(tmp_path, 6)
    bundle = paired_folder(str(root), image_size=16, channels=3, source_channels=1, holdout=0.3, seed=1)
    assert (len(bundle.train), len(bundle.heldout)) == (4, 2) and bundle.spec.fields["source"] == (1, 16, 16)
    for i, item in enumerate(bundle.train.dataset[i] for i in range(6)):
        assert item["source"].shape == (1, 16, 16) and torch.allclose(item["source"], torch.full((1, 16, 16), _unit(10 * i)))
        assert torch.allclose(item["image"][:, 0, 0], torch.tensor([_unit(200 - 10 * i), _unit(30), _unit(90)]))
    flipped = paired_folder(str(root), image_size=16, channels=1, source_channels=3, direction="BtoA").train.dataset[2]
    assert flipped["source"].shape == (3, 16, 16) and torch.allclose(flipped["image"], torch.full((1, 16, 16), _unit(20)))
    held = {int(round((x[0, 0, 0].item() + 1) * 127.5)) for x in take(bundle.heldout, 2)["source"]}
    trained = {int(round((bundle.train[i]["source"][0, 0, 0].item() + 1) * 127.5)) for i in range(4)}
    assert not held & trained


def test_a_and_b_folders_pair_files_by_name_across_extensions_and_use_the_val_split(tmp_path):
    root = separate(tmp_path, ["p", "q", "x"], split="train")
    separate(tmp_path, ["r"], split="val")
    bundle = paired_folder(str(root), image_size=S, channels=3, source_channels=1)
    assert (len(bundle.train), len(bundle.heldout)) == (3, 1)
    grey = np.asarray(Image.fromarray(_pair(2)[1]).convert("L"), np.float32)[0, 0]  # B of "x" read as grey, for BtoA
    flipped = paired_folder(str(root), image_size=S, channels=1, source_channels=1, direction="BtoA").train[2]
    assert torch.allclose(flipped["source"][0, 0, 0], torch.tensor(_unit(grey)), atol=1 / 255)
    other = separate(tmp_path / "combine", ["p", "q"], split="train", b_first=True)  # A/train, B/train, A/test, B/test
    separate(other, ["r"], split="test", b_first=True)
    assert [len(s) for s in (paired_folder(str(other), image_size=S, source_channels=1).train,)] == [2]


@pytest.mark.parametrize("layout", ["side_by_side", "separate"])
def test_each_layout_trains_two_steps(compose, tmp_path, layout):
    root = side_by_side(tmp_path / "data", 6) if layout == "side_by_side" else separate(tmp_path / "data", list("abcdef"))
    overrides = [
        "model=pix2pix",
        "dataset=paired_folder",
        f"dataset.root={root}",
        f"dataset.image_size={S}",
        "dataset.source_channels=1",
        "dataset.source.holdout=0.34",
        "model.generator.width=2",
        "model.discriminator.width=2",
        "trainer.steps=2",
        "trainer.batch_size=2",
        "trainer.num_samples=2",
        "trainer.sample_every=2",
        "trainer.eval_every=2",
        "eval.num_samples=6",
    ]
    logs = train(compose(overrides), tmp_path / "run")  # no labels: scored by the pixel metrics only
    assert np.isfinite(logs["loss/L1"]) and {"L1/pixels", "PSNR/pixels", "SSIM/pixels"} <= set(logs) and not any("FID" in k for k in logs)
    assert (tmp_path / "run" / "samples" / "translation_step_0000002.png").is_file()


def test_malformed_layouts_are_refused_in_one_line_naming_the_file(tmp_path):
    lonely = separate(tmp_path / "lonely", ["p", "q"])
    (lonely / "B" / "q.jpg").unlink()
    sizes = separate(tmp_path / "sizes", ["p", "q"])
    _save(sizes / "B" / "q.jpg", np.zeros((S, S + 2, 3), np.uint8))
    (tmp_path / "empty" / "A").mkdir(parents=True)
    (tmp_path / "empty" / "B").mkdir()
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "notes.txt").write_text("no images here")
    grey = separate(tmp_path / "grey", ["p", "q"])
    cases = [
        (lonely, {}, r"A/q.png' has no partner named q\.\* in .*B'"),
        (sizes, {}, r"A/q.png' is 32×32 but its partner .*B/q.jpg' is 34×32"),
        (tmp_path / "empty", {}, r"no images .* in .*empty/A"),
        (tmp_path / "nothing", {}, r"no images .* in .*nothing'; put A\|B side-by-side images there"),
        (grey, {"source_channels": 3}, r"all single-channel \(grey\) but dataset.source_channels=3"),
        (tmp_path / "missing", {}, r"dataset.root=.* is not a folder"),
    ]
    for root, options, message in cases:
        with pytest.raises(ConfigError, match=message) as err:
            paired_folder(str(root), image_size=S, **{"source_channels": 1, **options})
        assert "\n" not in str(err.value)


def test_edges2digits_pairs_each_digits_edge_map_with_the_digit_and_keeps_its_label():
    bundle = edges2digits(image_size=S)
    held = bundle.heldout.tensors()
    assert held["source"].unique().tolist() == [-1.0, 1.0]  # binary edges
    assert torch.equal((held["source"] + 1) / 2, edge_map((held["image"] + 1) / 2))
    assert held["label"].bincount().min() > 30 and len(bundle.train) + len(bundle.heldout) == 1797
    assert bundle.spec.fields == {"image": (1, S, S), "source": (1, S, S), "label": ()}


def test_gray2color_pairs_each_luma_crop_with_its_colour_crop_and_holds_out_other_regions():
    bundle = gray2color(image_size=16, photo_size=64, stride=8)
    train, held = bundle.train.tensors(), bundle.heldout.tensors()
    assert torch.allclose(held["source"][:, 0], torch.einsum("nchw,c->nhw", held["image"], torch.from_numpy(LUMA)))
    assert bundle.spec.fields == {"image": (3, 16, 16), "source": (1, 16, 16)} and len(held["image"]) >= 6
    flat_train, flat_held = train["image"].flatten(1), held["image"].flatten(1)
    assert torch.cdist(flat_held, flat_train).min() > 0  # no held-out crop is a training crop
