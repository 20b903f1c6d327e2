"""Unpaired two-domain data for CycleGAN: each sample is a ``source`` image of domain A and an ``image`` of domain B
that have nothing to do with each other.

Pairing: a split of domains of |A| and |B| images has max(|A|, |B|) samples; sample i is A[i mod |A|] with
B[σ(i) mod |B|], σ a permutation of the indices drawn once from the seed (``pairing``). The pairing is a fixed
function of the index, so the resumable batch stream (gantrain/data/__init__.py: a fresh permutation of the
indices each epoch, its position checkpointed) gives a resumed run exactly the batches it would have seen, with
or without loader workers. Every epoch shows every image of the larger domain once and the smaller one's
cyclically, in a new order; which B shares a sample with which A stays fixed, which CycleGAN's losses never
read (each of its terms sees one domain). The official loader instead draws B at random per item, which a
checkpoint could not replay.

``unpaired_folder``: the CycleGAN layout ``root/trainA``, ``trainB`` and, optionally, ``testA``, ``testB`` (a
missing test folder is replaced by ``holdout`` of the training images of that domain). Files are found by
image extension in any case (hidden ones skipped), read by gantrain/data/images.py (resized on the shorter
side to ``image_size`` and centre-cropped) as ``source_channels`` (A) and ``channels`` (B) channels: a domain
that mixes grey and colour files is converted; one of only grey files is refused for 3 channels. The held-out
split is unpaired too, so no sample has a ground-truth translation.

``digit_domains``: the built-in task with ground truth: two domains of gantrain/data/digit_domains.py. The
training A and B images come from disjoint halves of the training digits (truly unpaired); the held-out split
pairs each held-out digit in domain A (``source``) with its true translation (``image``) and its ``label``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset

from gantrain.data import DataBundle, DataSpec, InMemory
from gantrain.data.digit_domains import digits_unit, domain_channels, render
from gantrain.data.images import EXTENSIONS, GREY, MODES, header, read_image
from gantrain.errors import ConfigError

log = logging.getLogger(__name__)
Tensor = torch.Tensor


def pairing(n_a: int, n_b: int, seed: int) -> tuple[Tensor, Tensor]:
    """The A and B index of each of the max(n_a, n_b) samples: (i mod n_a, σ(i) mod n_b)."""
    n = max(n_a, n_b)
    sigma = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return torch.arange(n) % n_a, sigma % n_b


class UnpairedFiles(Dataset):
    """Two lists of image files read on demand as ``source`` (A) and ``image`` (B), paired by ``pairing``."""

    def __init__(self, files_a: list[Path], files_b: list[Path], image_size: int, channels_a: int, channels_b: int, seed: int):
        self.files = (files_a, files_b)
        self.channels = (channels_a, channels_b)
        self.image_size = image_size
        self.index = pairing(len(files_a), len(files_b), seed)

    def __len__(self) -> int:
        return len(self.index[0])

    def _read(self, domain: int, i: int) -> Tensor:
        path = self.files[domain][int(self.index[domain][i])]
        try:
            return read_image(path, self.channels[domain], self.image_size)
        except OSError as err:
            raise ConfigError(f"image {str(path)!r} does not decode ({err}): delete or replace it, then resume the run") from None

    def __getitem__(self, i: int) -> dict:
        return {"source": self._read(0, i), "image": self._read(1, i)}


def _domain_files(folder: Path, channels: int, key: str) -> list[Path]:
    """The readable images under ``folder`` (skipped files counted in one warning); refused when there are none,
    or only grey ones for ``channels`` = 3 (``key`` names the setting)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in EXTENSIONS)
    modes = [header(f) for f in files]
    kept = [(f, m) for f, m in zip(files, modes) if m in MODES]
    if not kept:
        raise ConfigError(f"{str(folder)!r} holds no readable image ({', '.join(EXTENSIONS)}): add the domain's images to it")
    if len(kept) < len(files):
        log.warning("skipped %d of %d files under %r: not readable images of a known mode", len(files) - len(kept), len(files), str(folder))
    if channels == 3 and all(m in GREY for _, m in kept):
        raise ConfigError(f"the images under {str(folder)!r} are all single-channel (grey) but {key}=3: pass {key}=1")
    return [f for f, _ in kept]


def _split(root: Path, domain: str, channels: int, key: str, holdout: float, seed: int) -> tuple[list[Path], list[Path]]:
    """The training and held-out files of ``domain`` (A or B): ``train<D>/`` and ``test<D>/``, or a held-out
    fraction of ``train<D>/`` when there is no ``test<D>/``."""
    train_dir, test_dir = root / f"train{domain}", root / f"test{domain}"
    if not train_dir.is_dir():
        raise ConfigError(f"dataset.root={str(root)!r} has no train{domain}/ folder: the layout is trainA/, trainB/ (and testA/, testB/)")
    train = _domain_files(train_dir, channels, key)
    if test_dir.is_dir():
        return train, _domain_files(test_dir, channels, key)
    n_held = max(1, round(holdout * len(train)))
    if n_held >= len(train):
        raise ConfigError(
            f"{str(train_dir)!r} has {len(train)} image(s) and there is no test{domain}/: with dataset.source.holdout={holdout} none "
            f"is left to train on; add images or a test{domain}/ folder"
        )
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
    return [train[i] for i in order[n_held:]], [train[i] for i in order[:n_held]]


def _spec(channels_a: int, channels_b: int, image_size: int, num_classes: int = 0) -> DataSpec:
    shape_b = (channels_b, image_size, image_size)
    fields = {"source": (channels_a, image_size, image_size), "image": shape_b, **({"label": ()} if num_classes else {})}
    return DataSpec(kind="image", shape=shape_b, num_classes=num_classes, fields=fields)


def unpaired_folder(
    root: str, image_size: int = 256, channels: int = 3, source_channels: int = 3, holdout: float = 0.05, seed: int = 0
) -> DataBundle:
    """The CycleGAN folder layout under ``root`` (see the module docstring)."""
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"dataset.root={root!r} is not a folder; point it at a folder holding trainA/ and trainB/")
    for key, value in (("dataset.channels", channels), ("dataset.source_channels", source_channels)):
        if value not in (1, 3):
            raise ConfigError(f"{key}={value}: image folders are read as 1 (grey) or 3 (RGB) channels")
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 <= holdout < 1:
        raise ConfigError(f"dataset.source.holdout={holdout} is the fraction of a domain held out without a test folder: use [0, 1)")
    train_a, held_a = _split(folder, "A", source_channels, "dataset.source_channels", holdout, seed)
    train_b, held_b = _split(folder, "B", channels, "dataset.channels", holdout, seed + 1)
    return DataBundle(
        train=UnpairedFiles(train_a, train_b, image_size, source_channels, channels, seed),
        heldout=UnpairedFiles(held_a, held_b, image_size, source_channels, channels, seed),
        spec=_spec(source_channels, channels, image_size),
    )


def digit_domains(
    image_size: int = 32,
    domain_a: str = "thin",
    domain_b: str = "thick",
    channels: int = 1,
    source_channels: int = 1,
    holdout: float = 0.2,
    seed: int = 0,
) -> DataBundle:
    """Digits in ``domain_a`` (A) and ``domain_b`` (B), split into disjoint held-out digits (stratified by class)
    and two disjoint halves of the rest for the A and B training images. The training split's ``label`` is the
    B image's class (what the evaluator's dataset classifier learns from B); the held-out one's is the digit's,
    which a translation should preserve."""
    try:
        need = domain_channels([domain_a, domain_b])
    except ValueError as err:
        raise ConfigError(f"dataset.domain_a/domain_b: {err}") from None
    if domain_a == domain_b:
        raise ConfigError(f"dataset.domain_a and dataset.domain_b are both {domain_a!r}: choose two different domains")
    if (channels, source_channels) != (need, need):
        raise ConfigError(
            f"digit domains {domain_a} → {domain_b} have {need} channel(s): pass dataset.channels={need} dataset.source_channels={need}"
        )
    images, labels = digits_unit(image_size)
    index = torch.arange(len(labels)).numpy()
    train, held = train_test_split(index, test_size=holdout, stratify=labels.numpy(), random_state=seed)
    part_a, part_b = train_test_split(train, test_size=0.5, stratify=labels[train].numpy(), random_state=seed)
    part_a, part_b, held = (torch.as_tensor(p) for p in (part_a, part_b, held))
    ia, ib = pairing(len(part_a), len(part_b), seed)
    a, b = part_a[ia], part_b[ib]
    return DataBundle(
        train=InMemory({"source": render(images[a], domain_a, need), "image": render(images[b], domain_b, need), "label": labels[b]}),
        heldout=InMemory(
            {"source": render(images[held], domain_a, need), "image": render(images[held], domain_b, need), "label": labels[held]}
        ),
        spec=_spec(need, need, image_size, num_classes=10),
    )
