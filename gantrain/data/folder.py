"""Any folder of images: class subfolders (torchvision ImageFolder layout) or a flat/nested folder.

Bad files: every file's header is read once at the start; files that are not readable images are
skipped with one warning that counts them. A file whose header reads but whose pixels do not decode
(truncated after its header) stops the run when first loaded, naming the file. A folder of only
single-channel images is refused for a 3-channel model (pass dataset.channels=1); a folder that mixes
grey and colour images is converted to ``dataset.channels``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset, Subset
from torchvision import transforms
from torchvision.datasets.folder import IMG_EXTENSIONS

from gantrain.data import DataBundle, DataSpec
from gantrain.errors import ConfigError

log = logging.getLogger(__name__)

GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


class FolderImages(Dataset):
    """Image files with optional integer labels, resized, center-cropped and scaled to [-1, 1]."""

    def __init__(self, files: list[Path], labels: list[int] | None, image_size: int, channels: int):
        self.files, self.labels = files, labels
        self.mode = {1: "L", 3: "RGB"}[channels]
        self.transform = transforms.Compose(
            [
                transforms.Resize(image_size),
                transforms.CenterCrop(image_size),
                transforms.ToTensor(),
                transforms.Normalize([0.5] * channels, [0.5] * channels),
            ]
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        try:
            with Image.open(self.files[i]) as img:
                item = {"image": self.transform(img.convert(self.mode))}
        except OSError as err:
            raise ConfigError(f"image {str(self.files[i])!r} does not decode ({err}): delete or replace it, then resume the run") from None
        if self.labels is not None:
            item["label"] = self.labels[i]
        return item


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)


def _image_mode(path: Path) -> str | None:
    """The PIL mode from the file's header (pixels are not decoded), or None if it is no readable image."""
    try:
        with Image.open(path) as img:
            return img.mode
    except (OSError, SyntaxError, ValueError):  # PIL's UnidentifiedImageError is an OSError
        return None


def image_folder(
    root: str,
    image_size: int = 64,
    channels: int = 3,
    labels: bool = False,
    holdout: float = 0.05,
    seed: int = 0,
) -> DataBundle:
    """Images under ``root``; with ``labels=True`` each subfolder of ``root`` is one class."""
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"dataset.root={root!r} is not a folder; point it at a folder of images")
    if channels not in (1, 3):
        raise ConfigError(f"dataset.channels={channels}: image folders are read as 1 (grey) or 3 (RGB) channels")
    if labels:
        classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
        files, targets = [], []
        for c, name in enumerate(classes):
            found = _image_files(folder / name)
            files += found
            targets += [c] * len(found)
        if len(classes) < 2:
            raise ConfigError(f"dataset.labels=true needs one subfolder per class under {root!r}; found {len(classes)}")
    else:
        files, targets, classes = _image_files(folder), None, []
    if not files:
        raise ConfigError(f"no images ({', '.join(IMG_EXTENSIONS)}) under {root!r}; point dataset.root at a folder of images")
    modes = [_image_mode(f) for f in files]
    bad = [f for f, m in zip(files, modes) if m is None]
    if len(bad) == len(files):
        raise ConfigError(f"none of the {len(files)} image files under {root!r} is a readable image (e.g. {str(bad[0])!r})")
    if bad:
        log.warning(
            "skipped %d of %d files under %r that are not readable images: %s%s",
            len(bad),
            len(files),
            root,
            ", ".join(str(f) for f in bad[:3]),
            " …" if len(bad) > 3 else "",
        )
        keep = [m is not None for m in modes]
        files = [f for f, k in zip(files, keep) if k]
        targets = [t for t, k in zip(targets, keep) if k] if targets is not None else None
    if channels == 3 and all(m in GREY_MODES for m in modes if m is not None):
        raise ConfigError(f"the images under {root!r} are all single-channel (grey) but dataset.channels=3: pass dataset.channels=1")
    dataset = FolderImages(files, targets, image_size, channels)
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed)).tolist()
    n_held = max(1, int(round(holdout * len(files)))) if len(files) > 1 else 0
    return DataBundle(
        train=Subset(dataset, order[n_held:]),
        heldout=Subset(dataset, order[:n_held]),
        spec=DataSpec(kind="image", shape=(channels, image_size, image_size), num_classes=len(classes)),
    )
