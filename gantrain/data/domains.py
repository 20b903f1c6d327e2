"""Multi-domain image data, as StarGAN (Choi et al. 2018) trains on: a folder of domains, and built-in digit styles.

``domains_folder`` reads one of two layouts under ``root``:

- one subfolder per domain (``root/<domain>/*.png``): single-label domains, a batch's ``label`` (int64) the
  domain's index in the sorted subfolder names (read by gantrain.data.folder.image_folder with labels);
- images anywhere under ``root`` plus an attribute CSV (``attributes=FILE``, relative to ``root`` or absolute)
  whose header is ``file,attr_1,…,attr_K`` and whose rows give each image's path relative to ``root`` and a 0/1
  per attribute: multi-label domains, as StarGAN's CelebA mode, a batch's ``attributes`` a float vector of the
  ``selected`` columns (all by default; the official code selects 5 of CelebA's 40). Every image under ``root``
  needs exactly one row; a row naming a missing or unreadable file, a value other than 0/1, a wrong number of
  values, a repeated file or an image without a row is refused in one line naming it, before training.

Images are read by gantrain.data.images (any Pillow mode, resized on the shorter side and centre-cropped to
``image_size``). ``DataSpec.num_classes`` is the number of domains (attributes) either way: the width of the
condition the networks take.

``digit_styles``: every digit of scikit-learn in all domains of gantrain.data.digit_domains (RGB when ``tinted``
is one). Training split: each digit in one random domain (``image``, ``label`` = its domain), so the translation
is learned unpaired. Held-out split: each digit in its origin domain (``source``, ``source_label``) and its true
rendering in a seeded target domain other than the origin (``image``, ``label`` = the target domain), so
translations are scored against the truth and the dataset classifier (trained on ``image`` → ``label``)
measures domain accuracy.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence

import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import Subset

from gantrain.data import DataBundle, DataSpec, InMemory
from gantrain.data.digit_domains import DOMAINS, digits_unit, domain_channels, render
from gantrain.data.folder import FolderImages, image_folder
from gantrain.data.images import EXTENSIONS, GREY, MODES, header
from gantrain.errors import ConfigError

Tensor = torch.Tensor


def domains_folder(
    root: str,
    image_size: int = 128,
    channels: int = 3,
    attributes: Optional[str] = None,
    selected: Optional[Sequence[str]] = None,
    holdout: float = 0.05,
    seed: int = 0,
) -> DataBundle:
    """The domains under ``root`` (module docstring): subfolders, or images with the ``attributes`` CSV."""
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"dataset.root={root!r} is not a folder; point it at a folder of domain subfolders or of images with a CSV")
    if attributes is None:
        if selected is not None:
            raise ConfigError(
                f"dataset.selected={list(selected)} picks columns of an attribute CSV: give it with dataset.attributes=FILE.csv"
            )
        subfolders = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
        if len(subfolders) < 2:
            raise ConfigError(
                f"dataset.root={root!r} has {len(subfolders)} subfolder(s): give one subfolder per domain (2 or more), "
                f"or images with an attribute CSV (dataset.attributes=FILE.csv)"
            )
        return image_folder(root, image_size, channels, labels=True, holdout=holdout, seed=seed)
    if selected is not None and not selected:
        raise ConfigError("dataset.selected=[] selects no attribute: list the CSV columns to use, or null for all")
    files, values = read_attributes(folder, attributes, selected)
    if channels not in (1, 3):
        raise ConfigError(f"dataset.channels={channels}: images are read as 1 (grey) or 3 (RGB) channels")
    if channels == 3 and all(header(f) in GREY for f in files):
        raise ConfigError(
            f"the images listed in {attributes!r} are all single-channel (grey) but dataset.channels=3: pass dataset.channels=1"
        )
    n, n_held = len(files), max(1, int(round(holdout * len(files))))
    if not 0 <= holdout < 1 or n_held >= n:
        raise ConfigError(
            f"{attributes!r} lists {n} image(s): dataset.source.holdout={holdout} must leave at least one to train on "
            f"and hold out at least one (a fraction in [0, 1)); add images or lower it"
        )
    dataset = AttributeImages(files, list(values), image_size, channels)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    k = values.shape[1]
    fields = {"image": (channels, image_size, image_size), "attributes": (k,)}
    return DataBundle(
        train=Subset(dataset, order[n_held:]),
        heldout=Subset(dataset, order[:n_held]),
        spec=DataSpec("image", (channels, image_size, image_size), num_classes=k, fields=fields),
    )


class AttributeImages(FolderImages):
    """Image files with a float vector of 0/1 attributes each (field ``attributes``)."""

    def __getitem__(self, i: int) -> dict:
        item = super().__getitem__(i)
        item["attributes"] = item.pop("label")
        return item


def read_attributes(folder: Path, attributes: str, selected: Optional[Sequence[str]] = None) -> tuple[list[Path], Tensor]:
    """The image files the CSV ``attributes`` lists (paths relative to ``folder``) and their 0/1 values of the
    ``selected`` columns (N×K float32), every row and every image under ``folder`` checked (module docstring)."""
    path = Path(attributes).expanduser()
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        raise ConfigError(
            f"dataset.attributes={attributes!r}: no such file under {str(folder)!r}; give the CSV's path (relative to dataset.root)"
        )
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [(n, [v.strip() for v in row]) for n, row in enumerate(csv.reader(handle), start=1) if any(v.strip() for v in row)]
    if not rows or rows[0][1][0] != "file" or len(rows[0][1]) < 2:
        raise ConfigError(f"{path}: the first line must be the header file,attr_1,…,attr_K (one or more attribute names)")
    names = rows[0][1][1:]
    columns = list(range(len(names))) if selected is None else [_column(names, s, path) for s in selected]
    files, values, seen = [], [], {}
    for line, row in rows[1:]:
        if len(row) != len(names) + 1:
            raise ConfigError(f"{path} line {line}: {len(row) - 1} values for {len(names)} attributes ({', '.join(names)})")
        name, entries = row[0], row[1:]
        bad = [(a, v) for a, v in zip(names, entries) if v not in ("0", "1")]
        if bad:
            raise ConfigError(f"{path} line {line}: attribute {bad[0][0]!r} of {name!r} is {bad[0][1]!r}; attributes are 0 or 1")
        if name in seen:
            raise ConfigError(f"{path} line {line}: {name!r} already has a row (line {seen[name]}); keep one row per image")
        file = folder / name
        if not file.is_file():
            raise ConfigError(f"{path} line {line} names {name!r}, which is not a file under {str(folder)!r}")
        if header(file) not in MODES:
            raise ConfigError(f"{path} line {line} names {name!r}, which is not an image gantrain reads; replace it or drop its row")
        seen[name] = line
        files.append(file)
        values.append([float(entries[c]) for c in columns])
    unlisted = [
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix.lower() in EXTENSIONS and p.relative_to(folder).as_posix() not in seen
    ]
    unlisted = [p for p in unlisted if not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    if unlisted:
        raise ConfigError(
            f"{len(unlisted)} image(s) under {str(folder)!r} have no row in {path.name} (e.g. {unlisted[0].relative_to(folder).as_posix()!r}): "
            f"add their rows or move them out of dataset.root"
        )
    if not files:
        raise ConfigError(f"{path} lists no images: add a row file,0/1,… per image")
    return files, torch.tensor(values, dtype=torch.float32)


def _column(names: list[str], name: str, path: Path) -> int:
    if name not in names:
        raise ConfigError(f"dataset.selected names {name!r}, which is not a column of {path}; its attributes are {', '.join(names)}")
    return names.index(name)


def _in_domains(images: Tensor, domain: Tensor, domains: Sequence[str], channels: int) -> Tensor:
    """Each of ``images`` (N×1×S×S in [0, 1]) rendered in its own domain, ``domains[domain[i]]``."""
    out = torch.empty(len(images), channels, *images.shape[2:])
    for k, name in enumerate(domains):
        chosen = domain == k
        out[chosen] = render(images[chosen], name, channels)
    return out


def digit_styles(image_size: int = 32, domains: Sequence[str] = DOMAINS, holdout: float = 0.2, seed: int = 0) -> DataBundle:
    """The built-in multi-domain task of the module docstring, split stratified by digit class."""
    domains = list(domains)
    if len(domains) < 2 or len(set(domains)) < len(domains):
        raise ConfigError(f"dataset.source.domains={domains}: list two or more different domains of {', '.join(DOMAINS)}")
    try:
        channels = domain_channels(domains)
        images, digits = digits_unit(image_size)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    train_idx, held_idx = (
        torch.as_tensor(i) for i in train_test_split(range(len(digits)), test_size=holdout, stratify=digits.numpy(), random_state=seed)
    )
    g = torch.Generator().manual_seed(seed)
    k = len(domains)
    train_domain = torch.randint(k, (len(train_idx),), generator=g)
    origin = torch.randint(k, (len(held_idx),), generator=g)
    target = (origin + 1 + torch.randint(k - 1, (len(held_idx),), generator=g)) % k  # uniform over the others
    shape = (channels, image_size, image_size)
    train = {"image": _in_domains(images[train_idx], train_domain, domains, channels), "label": train_domain}
    heldout = {
        "image": _in_domains(images[held_idx], target, domains, channels),
        "label": target,
        "source": _in_domains(images[held_idx], origin, domains, channels),
        "source_label": origin,
    }
    fields = {"image": shape, "label": (), "source": shape, "source_label": ()}
    return DataBundle(InMemory(train), InMemory(heldout), DataSpec("image", shape, num_classes=k, fields=fields))
