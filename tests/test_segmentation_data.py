"""Label-map data for SPADE (gantrain/data/segmentation.py): a folder of images and index maps (values read as
stored, maps resized by nearest neighbour, each malformed layout refused in one line naming the file) and the
built-in shapes2texture (each class's pixels from its own texture, held-out crops from held-out texture columns)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gantrain.data.segmentation import compose, segmentation_folder, shapes2texture
from gantrain.errors import ConfigError


def blocks(size: int = 16, block: int = 4, classes: int = 3) -> np.ndarray:
    """A size×size map of block×block squares whose classes cycle 0, 1, …, classes − 1."""
    i = np.arange(size) // block
    return ((i[:, None] + 2 * i[None, :]) % classes).astype(np.uint8)


def write_folder(root, n: int = 6, size: int = 16, mode: str = "L"):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    for k in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / "images" / f"img{k}.jpg")
        labels = Image.fromarray(np.roll(blocks(size), k, axis=1))
        if mode == "P":  # palette indices whose colours are random: a conversion would change the values
            labels = labels.convert("P")
            labels.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tolist())
            labels.putdata(np.roll(blocks(size), k, axis=1).flatten().tolist())
        labels.save(root / "labels" / f"img{k}.png")
    return root


@pytest.mark.parametrize("mode", ["L", "P"])
def test_a_folder_gives_int64_maps_of_the_stored_values_resized_by_nearest_neighbour(tmp_path, mode):
    root = write_folder(tmp_path / "data", mode=mode)
    bundle = segmentation_folder(str(root), num_classes=3, image_size=8, holdout=0.34, seed=0)
    assert bundle.spec.fields == {"image": (3, 8, 8), "segmentation": (8, 8)} and bundle.spec.num_classes == 3
    assert len(bundle.heldout) == 2 and len(bundle.train) == 4
    for split in (bundle.train, bundle.heldout):
        for i in range(len(split)):
            item = split[i]
            k = int(split.dataset.pairs[split.indices[i]][0].stem[3:])
            assert item["segmentation"].dtype == torch.int64 and item["image"].shape == (3, 8, 8)
            # 4×4 blocks halved: every output pixel is the class of its block, never a blend of two
            expected = np.roll(blocks(16), k, axis=1)[1::2, 1::2]
            assert np.array_equal(item["segmentation"].numpy(), expected)


def test_the_ignore_index_is_kept_and_a_larger_value_refused_naming_the_file(tmp_path):
    root = write_folder(tmp_path / "data", n=3)
    labels = blocks()
    labels[0, 0] = 255
    Image.fromarray(labels).save(root / "labels" / "img1.png")
    bundle = segmentation_folder(str(root), num_classes=3, image_size=16, ignore_index=255, holdout=0.34)
    maps = torch.stack([bundle.train[i]["segmentation"] for i in range(len(bundle.train))] + [bundle.heldout[0]["segmentation"]])
    assert (maps == 255).sum() == 1
    with pytest.raises(
        ConfigError, match=r"img1.png' holds the value 255, but dataset.num_classes=3 allows 0…2 \(set dataset.ignore_index"
    ):
        segmentation_folder(str(root), num_classes=3)


def test_malformed_layouts_are_refused_in_one_line_naming_the_file(tmp_path):
    def refused(root, match, **kw):
        with pytest.raises(ConfigError, match=match) as err:
            segmentation_folder(str(root), **{"num_classes": 3, **kw})
        assert "\n" not in str(err.value)

    root = write_folder(tmp_path / "a", n=3)
    (root / "labels" / "img2.png").unlink()
    refused(root, r"image '.*img2.jpg' has no index map '.*img2.png'")
    root = write_folder(tmp_path / "b", n=3)
    Image.fromarray(blocks()).save(root / "labels" / "stray.png")
    refused(root, r"index map '.*stray.png' has no image of the same name")
    root = write_folder(tmp_path / "c", n=3)
    Image.fromarray(blocks(20)).save(root / "labels" / "img0.png")
    refused(root, r"image '.*img0.jpg' is 16×16 but its index map '.*img0.png' is 20×20")
    root = write_folder(tmp_path / "d", n=3)
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(root / "labels" / "img0.png")
    refused(root, r"index map '.*img0.png' is a mode-RGB image")
    refused(root, r"dataset.num_classes=0 must be a positive integer", num_classes=0)
    (tmp_path / "e" / "images").mkdir(parents=True)
    refused(tmp_path / "e", r"needs an images/ and a labels/ folder")


def test_shapes2texture_fills_each_class_from_its_own_texture_in_its_own_columns():
    # textures whose value is c/3 + 0.02 + (column / width)/4 for class c: a composite pixel tells both
    width = 64
    columns = torch.arange(width).float() / width
    textures = [(c / 3 + 0.02 + columns / 4).expand(3, 40, width) for c in range(3)]
    maps = torch.as_tensor(np.stack([blocks(8, 2), np.roll(blocks(8, 2), 1, axis=0)])).long()
    for span in ((0.0, 0.75), (0.75, 1.0)):
        images = compose(maps, textures, span, np.random.default_rng(0)).double() / 255
        classes = (images * 3).floor().long()
        assert torch.equal(classes[:, 0], maps)  # each pixel from its class's texture
        fraction = (images - classes / 3 - 0.02) * 4  # the column it was cropped from, over the width
        assert fraction.min() > span[0] - 0.01 and fraction.max() < span[1] - 1 / width + 0.01  # every crop column in the span
    b = shapes2texture(image_size=16, train_size=40, heldout_size=20)
    train, held = b.train.tensors(), b.heldout.tensors()
    assert b.spec.fields == {"image": (3, 16, 16), "segmentation": (16, 16)} and b.spec.num_classes == 4
    assert train["segmentation"].dtype == torch.int64 and set(train["segmentation"].unique().tolist()) == {0, 1, 2, 3}
    assert train["image"].min() >= -1 and train["image"].max() <= 1
    # held-out maps come from other seeds than the training ones
    assert not any(torch.equal(h, t) for h in held["segmentation"] for t in train["segmentation"])
    again = shapes2texture(image_size=16, train_size=40, heldout_size=20).train.tensors()
    assert torch.equal(again["image"], train["image"]) and torch.equal(again["segmentation"], train["segmentation"])
