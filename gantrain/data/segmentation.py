"""Semantic image synthesis data (SPADE, Park et al. 2019): a label map per image.

Fields: ``segmentation``, an int64 S×S map of class indices (what the generator is conditioned on), and
``image``, the C×S×S photo in [-1, 1] (what it generates). ``DataSpec.num_classes`` is the number of map classes.

``segmentation_folder``: ``root/images/`` and ``root/labels/``, each image with a PNG index map of the same name
(``images/a.jpg`` ↔ ``labels/a.png``), single-channel (mode 1, L, P, I;16 or I), read as integers without any
conversion (a palette PNG gives its palette indices). Images go through the one reader (gantrain/data/images.py):
the shorter side resized to ``image_size`` (bilinear), centre-cropped; maps take the same resize and crop by
nearest neighbour, so classes are never blended. Pixels equal to ``ignore_index`` belong to no class. Refused in
one line naming the file, before training: a file without its partner, an image and map of different sizes, a
map of colour pixels, a value ≥ ``num_classes`` (or negative) other than ``ignore_index``.

``shapes2texture``: random shapes (``skimage.draw.random_shapes``) on a background, each shape of a random class
filled with that class's texture from the photos that ship with scikit-image (brick, grass, gravel; background:
the moon's surface), tinted so classes differ in colour too. Training and held-out maps come from different seeds
and their texture crops from disjoint regions of each photo (held-out: its last ``heldout_fraction`` of columns).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.draw import random_shapes
from torch.utils.data import Dataset, Subset
from torchvision import transforms

from gantrain.data import DataBundle, DataSpec, InMemory
from gantrain.data.images import EXTENSIONS, read_image
from gantrain.errors import ConfigError

MAP_MODES = {"1", "L", "P", "I;16", "I;16L", "I;16B", "I;16N", "I"}


def _fields(channels: int, size: int) -> dict:
    return {"image": (channels, size, size), "segmentation": (size, size)}


# ------------------------------------------------------------------ a folder of images and index maps
def read_index_map(path: Path, size: int | None = None) -> np.ndarray:
    """The index map at ``path`` as int64 H×W, its values as stored; with ``size``, resized like ``read_image``
    (shorter side to ``size``, centre crop) by nearest neighbour."""
    with Image.open(path) as img:
        if img.mode not in MAP_MODES:
            raise ConfigError(
                f"index map {str(path)!r} is a mode-{img.mode} image: label maps are single-channel class indices (mode L, P or I;16)"
            )
        values = np.asarray(img).astype(np.int64)
    if size is None:
        return values
    resized = Image.fromarray(values.astype(np.int32))  # mode I: Pillow's nearest keeps every value
    resized = transforms.CenterCrop(size)(transforms.Resize(size, interpolation=transforms.InterpolationMode.NEAREST)(resized))
    return np.asarray(resized).astype(np.int64)


class SegmentationPairs(Dataset):
    """(image file, index-map file) pairs, read on fetch."""

    def __init__(self, pairs: list[tuple[Path, Path]], image_size: int, channels: int):
        self.pairs, self.image_size, self.channels = pairs, image_size, channels

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        image, labels = self.pairs[i]
        try:
            x = read_image(image, self.channels, self.image_size)
        except OSError as err:
            raise ConfigError(f"image {str(image)!r} does not decode ({err}): delete or replace it, then resume the run") from None
        return {"image": x, "segmentation": torch.from_numpy(read_index_map(labels, self.image_size))}


def _by_stem(folder: Path, extensions) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions:
            if p.stem in found:
                raise ConfigError(f"{str(found[p.stem])!r} and {str(p)!r} share one name: keep one file per name in {str(folder)!r}")
            found[p.stem] = p
    return found


def _check_pair(image: Path, labels: Path, num_classes: int, ignore_index: int | None) -> None:
    try:
        with Image.open(image) as img:
            size = img.size
    except OSError:
        raise ConfigError(f"image {str(image)!r} is not a readable image: delete or replace it") from None
    try:
        values = read_index_map(labels)
    except OSError:
        raise ConfigError(f"index map {str(labels)!r} is not a readable image: delete or replace it") from None
    if (values.shape[1], values.shape[0]) != size:
        raise ConfigError(
            f"image {str(image)!r} is {size[0]}×{size[1]} but its index map {str(labels)!r} is {values.shape[1]}×{values.shape[0]}: they must match"
        )
    bad = (values < 0) | (values >= num_classes)
    if ignore_index is not None:
        bad &= values != ignore_index
    if bad.any():
        ignoring = (
            f" (or the ignore index {ignore_index})"
            if ignore_index is not None
            else " (set dataset.ignore_index for a value that marks no class)"
        )
        raise ConfigError(
            f"index map {str(labels)!r} holds the value {int(values[bad][0])}, but dataset.num_classes={num_classes} allows 0…{num_classes - 1}{ignoring}"
        )


def segmentation_folder(
    root: str,
    num_classes: int,
    image_size: int = 32,
    channels: int = 3,
    ignore_index: int | None = None,
    holdout: float = 0.1,
    seed: int = 0,
) -> DataBundle:
    """``root/images/*`` with ``root/labels/<same name>.png``, a seeded ``holdout`` fraction held out."""
    folder = Path(root).expanduser()
    images, labels = folder / "images", folder / "labels"
    if not images.is_dir() or not labels.is_dir():
        raise ConfigError(f"dataset.root={root!r} needs an images/ and a labels/ folder (index maps of the same names as the images)")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"dataset.num_classes={num_classes!r} must be a positive integer: the number of classes in the index maps")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int) or ignore_index < 0):
        raise ConfigError(
            f"dataset.ignore_index={ignore_index!r} must be a non-negative integer (the map value of unlabelled pixels) or null"
        )
    if channels not in (1, 3):
        raise ConfigError(f"dataset.channels={channels}: images are read as 1 (grey) or 3 (RGB) channels")
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 <= holdout < 1:
        raise ConfigError(f"dataset.source.holdout={holdout} is the fraction of images held out: use a value in [0, 1)")
    photos, maps = _by_stem(images, EXTENSIONS), _by_stem(labels, (".png",))
    for stem, path in photos.items():
        if stem not in maps:
            raise ConfigError(f"image {str(path)!r} has no index map {str(labels / (stem + '.png'))!r}: add it or remove the image")
    for stem, path in maps.items():
        if stem not in photos:
            raise ConfigError(f"index map {str(path)!r} has no image of the same name in {str(images)!r}: add it or remove the map")
    pairs = [(photos[s], maps[s]) for s in sorted(photos)]
    if len(pairs) < 2:
        raise ConfigError(f"dataset.root={root!r} holds {len(pairs)} image + map pairs: at least 2 are needed (one held out)")
    for image, labels_file in pairs:
        _check_pair(image, labels_file, num_classes, ignore_index)
    n = len(pairs)
    n_held = max(1, int(round(holdout * n)))
    if n_held >= n:
        raise ConfigError(f"dataset.source.holdout={holdout} leaves none of the {n} pairs under {root!r} to train on: lower it")
    dataset = SegmentationPairs(pairs, image_size, channels)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    spec = DataSpec("image", (channels, image_size, image_size), num_classes, _fields(channels, image_size))
    return DataBundle(train=Subset(dataset, order[n_held:]), heldout=Subset(dataset, order[:n_held]), spec=spec)


# ------------------------------------------------------------------ the built-in task
# class → (scikit-image photo, RGB tint); class 0 is the background
TEXTURES = {
    "background": ("moon", (0.45, 0.55, 0.9)),
    "brick": ("brick", (1.0, 0.55, 0.4)),
    "grass": ("grass", (0.5, 1.0, 0.35)),
    "gravel": ("gravel", (0.85, 0.85, 0.8)),
}


def texture(name: str, scale: float) -> torch.Tensor:
    """The tinted 3×H×W texture of class ``name`` in [0, 1]: its grey photo area-resized by ``scale``."""
    photo, tint = TEXTURES[name]
    grey = torch.as_tensor(getattr(skimage.data, photo)(), dtype=torch.float32)[None, None] / 255.0
    size = [max(1, int(round(s * scale))) for s in grey.shape[-2:]]
    grey = F.interpolate(grey, size=size, mode="area")[0]
    return grey * torch.tensor(tint).view(3, 1, 1)


def random_maps(n: int, size: int, num_classes: int, max_shapes: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` int64 size×size maps: up to ``max_shapes`` overlapping random shapes of sides size/3 … size, each
    of a class drawn from 1…num_classes−1, on the background class 0."""
    maps = np.empty((n, size, size), dtype=np.int64)
    with warnings.catch_warnings():  # a shape that does not fit is skipped, with a warning each time
        warnings.simplefilter("ignore")
        for i in range(n):
            drawn, _ = random_shapes(
                (size, size),
                max_shapes,
                min_size=max(2, size // 3),
                max_size=size,
                num_channels=1,
                channel_axis=None,
                intensity_range=(1, num_classes - 1),  # a shape's "intensity" is its class; 255 is the background
                allow_overlap=True,
                rng=rng,
            )
            maps[i] = np.where(drawn == 255, 0, drawn)
    return maps


def compose(maps: torch.Tensor, textures: list[torch.Tensor], columns: tuple[float, float], rng: np.random.Generator) -> torch.Tensor:
    """uint8 N×3×S×S composites: each pixel of class c from an S×S crop of ``textures[c]``, one crop per image and
    class at a random place whose columns lie in the fraction ``columns`` of the texture's width."""
    n, s = maps.shape[0], maps.shape[-1]
    crops = torch.empty(n, len(textures), 3, s, s)
    for c, tex in enumerate(textures):
        h, w = tex.shape[-2:]
        lo, hi = int(columns[0] * w), int(columns[1] * w) - s
        if hi < lo or h < s:
            raise ConfigError(
                f"dataset.image_size={s} does not fit into the texture region of {hi + s - lo}×{h} px: lower it or raise dataset.source.texture_scale"
            )
        rows, cols = rng.integers(0, h - s + 1, n), rng.integers(lo, hi + 1, n)
        for i in range(n):
            crops[i, c] = tex[:, rows[i] : rows[i] + s, cols[i] : cols[i] + s]
    index = maps[:, None, None].expand(n, 1, 3, s, s)
    return crops.gather(1, index)[:, 0].mul(255).round().clamp(0, 255).to(torch.uint8)


def shapes2texture(
    image_size: int = 32,
    train_size: int = 2000,
    heldout_size: int = 500,
    classes: tuple = ("brick", "grass", "gravel"),
    max_shapes: int = 6,
    texture_scale: float = 0.5,
    heldout_fraction: float = 0.25,
    seed: int = 0,
) -> DataBundle:
    """Label maps of random textured shapes (class 0: background, then ``classes`` in order) and their composites."""
    unknown = [c for c in classes if c not in TEXTURES or c == "background"]
    if unknown or not classes:
        raise ConfigError(
            f"dataset.source.classes={list(classes)}: choose one or more of {', '.join(k for k in TEXTURES if k != 'background')}"
        )
    if not 0 < heldout_fraction < 1:
        raise ConfigError(
            f"dataset.source.heldout_fraction={heldout_fraction} must lie in (0, 1): the texture columns kept for held-out crops"
        )
    textures = [texture(name, texture_scale) for name in ("background", *classes)]
    splits = []
    for split, (n, columns) in enumerate(((train_size, (0.0, 1 - heldout_fraction)), (heldout_size, (1 - heldout_fraction, 1.0)))):
        rng = np.random.default_rng([seed, split])
        maps = torch.from_numpy(random_maps(n, image_size, len(textures), max_shapes, rng))
        images = compose(maps, textures, columns, rng)
        splits.append(InMemory({"image": images, "segmentation": maps}))
    spec = DataSpec("image", (3, image_size, image_size), len(textures), _fields(3, image_size))
    return DataBundle(train=splits[0], heldout=splits[1], spec=spec)
