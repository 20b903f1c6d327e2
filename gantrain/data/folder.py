"""Any folder of images: class subfolders (torchvision ImageFolder layout) or a flat/nested folder.

Every file is read by ``gantrain.data.images`` (its docstring says how each Pillow mode and bit depth reaches
[-1, 1]). Files are found by extension, in any case (``.PNG``, ``.JpG``); hidden files are not looked at.
Bad files: every file's header is read once at the start; files that are not readable images, are of a mode
the reader does not know, or have no image extension are skipped with one warning that counts each kind.
Mode I and F files are decoded at the start too, and refused with a count when a value lies outside their
range. A file whose header reads but whose pixels do not decode (truncated after its header) stops the run
when first loaded, naming the file. A folder of only single-channel images is refused for a 3-channel model
(pass dataset.channels=1); a folder that mixes grey and colour images is converted to ``dataset.channels``.
With ``labels=True`` a class folder left with no images is refused, naming it (dropping it would renumber
the classes after it), and image files lying directly in ``root``, outside every class folder, belong to no
class: they are skipped, counted in the warning. A split that leaves no image to train on or none held out is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from gantrain.data import DataBundle, DataSpec
from gantrain.data.images import EXTENSIONS, GREY, MODES, RANGES, header, out_of_range, read_image
from gantrain.errors import ConfigError

log = logging.getLogger(__name__)
RANGE_WORDS = {"I": "32-bit integer (mode I) images as 16-bit", "F": "float (mode F) images as [0, 1]"}


class FolderImages(Dataset):
    """Image files with optional integer labels, read by ``read_image``, resized and center-cropped."""

    def __init__(self, files: list[Path], labels: list[int] | None, image_size: int, channels: int):
        self.files, self.labels, self.channels, self.image_size = files, labels, channels, image_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        try:
            item = {"image": read_image(self.files[i], self.channels, self.image_size)}
        except OSError as err:
            raise ConfigError(f"image {str(self.files[i])!r} does not decode ({err}): delete or replace it, then resume the run") from None
        if self.labels is not None:
            item["label"] = self.labels[i]
        return item


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _names(paths: list, n: int = 3) -> str:
    return ", ".join(str(p) for p in paths[:n]) + (" …" if len(paths) > n else "")


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
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 <= holdout < 1:
        raise ConfigError(f"dataset.source.holdout={holdout} is the fraction of images held out: use a value in [0, 1)")
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir()) if labels else []
    if labels and len(classes) < 2:
        raise ConfigError(f"dataset.labels=true needs one subfolder per class under {root!r}; found {len(classes)}")
    found = [(f, c) for c, name in enumerate(classes) for f in _files(folder / name)] if labels else [(f, None) for f in _files(folder)]
    loose = [f for f in sorted(folder.iterdir()) if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in EXTENSIONS]
    loose = loose if labels else []
    other = [f for f, _ in found if f.suffix.lower() not in EXTENSIONS]
    found = [(f, c) for f, c in found if f.suffix.lower() in EXTENSIONS]
    if not found:
        held = f" (its {len(other)} files have other extensions, e.g. {str(other[0])!r})" if other else ""
        raise ConfigError(f"no images ({', '.join(EXTENSIONS)}) under {root!r}{held}; point dataset.root at a folder of images")
    modes = [header(f) for f, _ in found]
    unreadable = [f for (f, _), m in zip(found, modes) if m is None]
    unknown = [f"{f}: {m}" for (f, _), m in zip(found, modes) if m is not None and m not in MODES]
    kept = [(f, c, m) for (f, c), m in zip(found, modes) if m in MODES]
    if not kept:
        why = f", {len(unknown)} of a mode gantrain does not read ({_names(unknown)})" if unknown else ""
        raise ConfigError(f"none of the {len(found)} image files under {root!r} is a readable image (e.g. {str(found[0][0])!r}{why})")
    if unreadable or unknown or other or loose:
        kinds = [
            (unreadable, "not readable images"),
            (unknown, "of a mode gantrain does not read"),
            (other, "with no image extension"),
            (loose, "outside the class folders (dataset.labels=true: move them into one)"),
        ]
        log.warning(
            "skipped %d of %d files under %r: %s",
            len(unreadable) + len(unknown) + len(other) + len(loose),
            len(found) + len(other) + len(loose),
            root,
            "; ".join(f"{len(paths)} {what} ({_names(paths)})" for paths, what in kinds if paths),
        )
    for mode, words in RANGE_WORDS.items():  # decoded: their range is not their type's
        checked = [f for f, _, m in kept if m == mode]
        bad = []
        for f in checked:
            try:
                span = out_of_range(f)
            except OSError:
                continue  # stops the run naming the file when it is first loaded
            if span is not None:
                bad.append((f, span))
        if bad:
            (f, (lo, hi)), (a, b) = bad[0], RANGES[mode]
            raise ConfigError(
                f"{len(bad)} of {len(checked)} mode-{mode} images under {root!r} hold values outside [{a:g}, {b:g}] "
                f"(e.g. {str(f)!r}: min {lo:g}, max {hi:g}); gantrain reads {words}: rescale them"
            )
    if labels:
        empty = [name for c, name in enumerate(classes) if not any(k == c for _, k, _ in kept)]
        if empty:
            raise ConfigError(
                f"dataset.labels=true: {len(empty)} of {len(classes)} class folders under {root!r} hold no readable images "
                f"({_names(empty)}); add images to them or move them out of dataset.root"
            )
    if channels == 3 and all(m in GREY for _, _, m in kept):
        raise ConfigError(f"the images under {root!r} are all single-channel (grey) but dataset.channels=3: pass dataset.channels=1")
    n = len(kept)
    n_held = max(1, int(round(holdout * n)))
    if n_held >= n:
        raise ConfigError(
            f"dataset.root={root!r} has {n} usable image{'s' if n > 1 else ''}: with dataset.source.holdout={holdout} none is left "
            f"to train on (a run holds out at least 1 for previews and metrics); add images or lower dataset.source.holdout"
        )
    files = [f for f, _, _ in kept]
    dataset = FolderImages(files, [c for _, c, _ in kept] if labels else None, image_size, channels)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return DataBundle(
        train=Subset(dataset, order[n_held:]),
        heldout=Subset(dataset, order[:n_held]),
        spec=DataSpec(kind="image", shape=(channels, image_size, image_size), num_classes=len(classes)),
    )
