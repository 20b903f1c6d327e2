"""Paired image-to-image data: each sample a ``source`` (the input domain) with its ``image`` (the target).

``paired_folder`` reads pix2pix's layouts from a user's folder; ``edges2digits`` and ``gray2color`` are built-in
tasks with ground truth, made offline from the digits and photos that ship with scikit-learn and scikit-image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset, Subset

from gantrain.data import DataBundle, DataSpec, InMemory
from gantrain.data.digit_domains import digits_unit
from gantrain.data.images import EXTENSIONS, GREY, LUMA, MODES, RANGES, header, out_of_range, read_image
from gantrain.errors import ConfigError

HELDOUT_SPLITS = ("val", "test")


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """C×H×W → C×size×size, stretched (antialiased bilinear)."""
    if x.shape[1:] == (size, size):
        return x
    return F.interpolate(x[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0].clamp_(-1, 1)


def _spec(channels: int, source_channels: int, size: int, num_classes: int = 0) -> DataSpec:
    fields = {"image": (channels, size, size), "source": (source_channels, size, size), **({"label": ()} if num_classes else {})}
    return DataSpec("image", (channels, size, size), num_classes, fields)


# ------------------------------------------------------------------ a user's folder
class FolderPairs(Dataset):
    """Pairs of files (a, b), or one side-by-side file (a, None) whose left half is A and right half B, read by
    ``read_image`` and stretched to size × size. ``flip`` (BtoA) makes B the source and A the target."""

    def __init__(self, pairs: list, size: int, channels: int, source_channels: int, flip: bool):
        self.pairs, self.size, self.channels, self.source_channels, self.flip = pairs, size, channels, source_channels, flip

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        a, b = self.pairs[i]
        c_a, c_b = (self.channels, self.source_channels) if self.flip else (self.source_channels, self.channels)
        if b is None:  # one decode per channel count the two halves need
            whole = {c: _read(a, c) for c in {c_a, c_b}}
            half = whole[c_a].shape[2] // 2
            x_a, x_b = whole[c_a][:, :, :half], whole[c_b][:, :, half : 2 * half]
        else:
            x_a, x_b = _read(a, c_a), _read(b, c_b)
        x_a, x_b = resize(x_a, self.size), resize(x_b, self.size)
        source, image = (x_b, x_a) if self.flip else (x_a, x_b)
        return {"source": source, "image": image}


def _read(path: Path, channels: int) -> torch.Tensor:
    try:
        return read_image(path, channels)
    except OSError as err:
        raise ConfigError(f"image {str(path)!r} does not decode ({err}): replace it, then resume the run") from None


def _images(folder: Path) -> dict[str, Path]:
    """The image files under ``folder`` (recursively, hidden ones skipped) by their path without extension."""
    found: dict[str, Path] = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(folder).parts) and f.suffix.lower() in EXTENSIONS:
            key = str(f.relative_to(folder).with_suffix(""))
            if key in found:
                raise ConfigError(f"{str(found[key])!r} and {str(f)!r} are one image name with two extensions: keep one of them")
            found[key] = f
    return found


def _check(files: list[Path], channels: int, key: str, where: Path) -> dict[Path, tuple]:
    """Every file's (mode, size) from its header; unreadable files, unknown modes, I/F files out of range and a
    colour model on all-grey images refused naming the file."""
    info = {}
    for f in files:
        mode = header(f)
        if mode is None or mode not in MODES:
            why = "is not a readable image" if mode is None else f"has mode {mode}, which gantrain does not read"
            raise ConfigError(f"{str(f)!r} {why}: replace or remove it (and its partner)")
        if mode in RANGES and out_of_range(f) is not None:
            raise ConfigError(f"{str(f)!r} (mode {mode}) holds values outside {RANGES[mode]}: rescale it")
        with Image.open(f) as img:
            info[f] = (mode, img.size)
    if channels == 3 and info and all(m in GREY for m, _ in info.values()):
        raise ConfigError(f"the images of {str(where)!r} are all single-channel (grey) but dataset.{key}=3: pass dataset.{key}=1")
    return info


def _split_pairs(a_dir: Path, b_dir: Path | None, channels: int, source_channels: int, flip: bool) -> list:
    """The pairs of one split: files of ``a_dir`` matched by name with ``b_dir``'s, or side-by-side files."""
    key_a, key_b = ("channels", "source_channels") if flip else ("source_channels", "channels")
    c_a, c_b = (channels, source_channels) if flip else (source_channels, channels)
    if b_dir is None:
        files = list(_images(a_dir).values())
        if not files:
            raise ConfigError(
                f"no images ({', '.join(EXTENSIONS)}) in {str(a_dir)!r}; put A|B side-by-side images there, or A/ and B/ folders"
            )
        info = _check(files, max(c_a, c_b), key_a if c_a >= c_b else key_b, a_dir)
        narrow = [f for f, (_, (w, h)) in info.items() if w < 2]
        if narrow:
            raise ConfigError(f"{str(narrow[0])!r} is 1 pixel wide and cannot hold A|B side by side")
        return [(f, None) for f in files]
    a, b = _images(a_dir), _images(b_dir)
    if not a:
        raise ConfigError(f"no images ({', '.join(EXTENSIONS)}) in {str(a_dir)!r}: put the A images of each pair there")
    for name in sorted(set(a) ^ set(b)):
        have, lack = (a, b_dir) if name in a else (b, a_dir)
        raise ConfigError(f"{str(have[name])!r} has no partner named {name}.* in {str(lack)!r}: add it or remove the file")
    info_a, info_b = _check(list(a.values()), c_a, key_a, a_dir), _check(list(b.values()), c_b, key_b, b_dir)
    for name in sorted(a):
        (w, h), (w2, h2) = info_a[a[name]][1], info_b[b[name]][1]
        if (w, h) != (w2, h2):
            raise ConfigError(f"{str(a[name])!r} is {w}×{h} but its partner {str(b[name])!r} is {w2}×{h2}: a pair must be of one size")
    return [(a[name], b[name]) for name in sorted(a)]


def _layout(folder: Path) -> tuple[Path, Path | None]:
    """(A folder, B folder) when ``folder`` holds A/ and B/, else (folder, None): side-by-side images."""
    return (folder / "A", folder / "B") if (folder / "A").is_dir() and (folder / "B").is_dir() else (folder, None)


def paired_folder(
    root: str,
    image_size: int = 256,
    channels: int = 3,
    source_channels: int = 3,
    direction: str = "AtoB",
    holdout: float = 0.1,
    seed: int = 0,
) -> DataBundle:
    """pix2pix's paired layouts under ``root``:

    - side by side: each image holds A (left half) | B (right half), pix2pix's ``aligned`` format; an odd
      width drops its last column;
    - ``A/`` and ``B/``: pairs are the files of one path and name in both (extensions may differ, e.g. a.jpg
      with a.png); a file without its partner, or a pair of two sizes, is refused naming the file.

    Splits: ``train/`` with ``val/`` or else ``test/`` held out, each in either layout (or ``A/train``,
    ``B/train``, ``A/test`` …, the layout of pix2pix's combine script); without them, a ``holdout`` fraction of
    the pairs drawn with ``seed``. ``direction``: AtoB translates A into B, BtoA the reverse. ``source_channels``
    and ``channels`` are the input and target domains' channels (1 or 3): the reader converts each file to them
    (grey repeated, colour to luma); a domain of only grey images is refused for 3 channels.

    Resizing: both images of a pair are stretched to image_size × image_size (antialiased bilinear), so their
    pixels stay aligned; a non-square image's aspect ratio is not kept (pix2pix's ``--preprocess resize``).
    No random jitter or mirroring (the paper's augmentation) is applied.
    """
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"dataset.root={root!r} is not a folder; point it at a folder of paired images")
    if direction not in ("AtoB", "BtoA"):
        raise ConfigError(f"dataset.direction={direction!r}: use AtoB or BtoA")
    for key, value in (("channels", channels), ("source_channels", source_channels)):
        if value not in (1, 3):
            raise ConfigError(f"dataset.{key}={value}: paired folders are read as 1 (grey) or 3 (RGB) channels")
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 < holdout < 1:
        raise ConfigError(f"dataset.source.holdout={holdout} is the fraction of pairs held out: use a value in (0, 1)")
    flip = direction == "BtoA"
    held = next((s for s in HELDOUT_SPLITS if (folder / s).is_dir() or (folder / "A" / s).is_dir()), None)
    if (folder / "train").is_dir():
        splits = [_layout(folder / "train")] + ([_layout(folder / held)] if held else [])
    elif (folder / "A" / "train").is_dir() and (folder / "B" / "train").is_dir():
        splits = [(folder / "A" / "train", folder / "B" / "train")] + ([(folder / "A" / held, folder / "B" / held)] if held else [])
    else:
        splits = [_layout(folder)]
    pairs = [_split_pairs(a, b, channels, source_channels, flip) for a, b in splits]
    spec = _spec(channels, source_channels, image_size)
    if len(pairs) == 2:
        train, heldout = (FolderPairs(p, image_size, channels, source_channels, flip) for p in pairs)
        return DataBundle(train=train, heldout=heldout, spec=spec)
    n = len(pairs[0])
    n_held = max(1, int(round(holdout * n)))
    if n_held >= n:
        raise ConfigError(
            f"dataset.root={root!r} has {n} pair{'s' if n > 1 else ''}: with dataset.source.holdout={holdout} none is left to "
            f"train on (one is held out for previews and metrics); add pairs, a val/ split, or lower dataset.source.holdout"
        )
    dataset = FolderPairs(pairs[0], image_size, channels, source_channels, flip)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return DataBundle(train=Subset(dataset, order[n_held:]), heldout=Subset(dataset, order[:n_held]), spec=spec)


# ------------------------------------------------------------------ built-in tasks
def edge_map(images: torch.Tensor, threshold: float = 0.25) -> torch.Tensor:
    """Binary edges of N×1×S×S images in [0, 1]: the morphological gradient (3×3 dilation − 3×3 erosion) above
    ``threshold``, as 0/1."""
    dilated = F.max_pool2d(images, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-images, 3, stride=1, padding=1)
    return (dilated - eroded > threshold).float()


def edges2digits(image_size: int = 32, holdout: float = 0.2, seed: int = 0) -> DataBundle:
    """scikit-learn's digits at ``image_size``: ``source`` the edge map of a digit (``edge_map``, strokes' outlines
    white on black), ``image`` the digit, ``label`` its class (so class preservation can be scored); split
    stratified by class."""
    digits, labels = digits_unit(image_size)
    edges = edge_map(digits)
    train, test = train_test_split(np.arange(len(labels)), test_size=holdout, stratify=labels.numpy(), random_state=seed)
    split = {name: torch.as_tensor(idx) for name, idx in (("train", train), ("heldout", test))}
    data = {
        name: InMemory({"source": edges[idx] * 2 - 1, "image": digits[idx] * 2 - 1, "label": labels[idx]}) for name, idx in split.items()
    }
    return DataBundle(train=data["train"], heldout=data["heldout"], spec=_spec(1, 1, image_size, num_classes=10))


def bundled_photos() -> list[np.ndarray]:
    """The colour photos that ship with scikit-image (astronaut, coffee, chelsea, rocket) and scikit-learn (china,
    flower), H×W×3 uint8."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    return [getattr(skimage.data, name)() for name in ("astronaut", "coffee", "chelsea", "rocket")] + list(load_sample_images().images)


def gray2color(image_size: int = 32, photo_size: int = 128, heldout_fraction: float = 0.25, stride: int = 8) -> DataBundle:
    """Colourization: ``source`` a grey crop (ITU-R 601 luma, the image reader's), ``image`` the colour crop.

    Each bundled photo is resized so its shorter side is ``photo_size``; its right ``heldout_fraction`` of columns
    gives the held-out crops, the rest the training crops (no crop crosses the boundary, so no pixel is in both),
    all image_size × image_size on a grid of ``stride`` pixels. No labels.
    """
    if not 0 < heldout_fraction < 1:
        raise ConfigError(f"dataset.source.heldout_fraction={heldout_fraction}: use a value in (0, 1)")
    if photo_size < image_size or stride < 1:
        raise ConfigError(
            f"dataset.source.photo_size={photo_size} must be at least dataset.image_size={image_size}, stride={stride} positive"
        )
    crops: dict[str, list[torch.Tensor]] = {"train": [], "heldout": []}
    for photo in bundled_photos():
        x = torch.tensor(photo).permute(2, 0, 1).float() / 127.5 - 1
        h, w = x.shape[1:]
        x = F.interpolate(x[None], scale_factor=photo_size / min(h, w), mode="bilinear", antialias=True, align_corners=False)[0]
        boundary = int(round(x.shape[2] * (1 - heldout_fraction)))
        regions = {"train": x[:, :, :boundary], "heldout": x[:, :, boundary:]}
        for name, region in regions.items():
            if region.shape[2] < image_size:
                raise ConfigError(
                    f"dataset.source.heldout_fraction={heldout_fraction} leaves a region narrower than dataset.image_size={image_size}"
                )
            tiles = region.unfold(1, image_size, stride).unfold(2, image_size, stride)  # 3 × rows × cols × S × S
            crops[name].append(tiles.permute(1, 2, 0, 3, 4).reshape(-1, 3, image_size, image_size))
    data = {}
    for name, parts in crops.items():
        colour = torch.cat(parts).clamp_(-1, 1)
        grey = torch.einsum("nchw,c->nhw", colour, torch.from_numpy(LUMA))[:, None]
        data[name] = InMemory({"source": grey, "image": colour})
    return DataBundle(train=data["train"], heldout=data["heldout"], spec=_spec(3, 1, image_size))
