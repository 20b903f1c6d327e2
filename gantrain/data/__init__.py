"""Datasets as dict batches, a description of their shape (DataSpec) and a resumable batch stream.

Field names every source uses for the same thing: ``image``, what the model generates (the target domain of a
translation: FID and the dataset classifier read this field); ``label``, a class or domain index; ``source``, a
translation's input image; ``attributes``, a float vector of 0/1 per sample (multi-label domains, StarGAN's CelebA
mode; ``DataSpec.num_classes`` then counts the attributes); ``mask``, a bool N×1×H×W map, true where pixels are missing (inpainting);
``segmentation``, an int64 index map (N×H×W) of classes; ``caption``, a string. A paired training split holds
each ``source`` with its ``image``; an unpaired one draws them independently; a held-out split pairs each
``source`` with its true translation wherever the task knows it (the built-in tasks), so translations are scored
against ground truth.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Optional, Sequence, Union

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know of its data.

    kind: "image" (tensors C×H×W in [-1, 1]) or "points" (vectors in R^dim), the ``image`` field's kind.
    shape: one sample's shape; num_classes: 0 for unlabelled data.
    fields: every field a batch holds, by name: a tensor field's per-sample shape (``()`` for a class index),
    or the type name of a field that is not a tensor (``"str"`` for a caption). By default ``image`` and, with
    classes, ``label``. The trainer moves tensor fields to the device and passes the others through.
    """

    kind: str
    shape: tuple[int, ...]
    num_classes: int = 0
    fields: Mapping[str, Union[tuple, str]] = field(default_factory=dict)

    def __post_init__(self):
        if not self.fields:
            default = {"image": tuple(self.shape), **({"label": ()} if self.num_classes else {})}
            object.__setattr__(self, "fields", default)

    @property
    def channels(self) -> Optional[int]:
        return self.shape[0] if self.kind == "image" else None

    @property
    def image_size(self) -> Optional[int]:
        return self.shape[-1] if self.kind == "image" else None


@dataclass
class DataBundle:
    """A training split, a held-out split (never trained on) and their spec.

    ``mixture`` is the true density where the data is a known Gaussian mixture (for mode metrics).
    """

    train: Dataset
    heldout: Dataset
    spec: DataSpec
    mixture: Optional[object] = None


class InMemory(Dataset):
    """Samples held as a dict of named fields: tensors (a uint8 tensor holds images, scaled to [-1, 1] on
    fetch; store masks and index maps as bool or int64) or lists (e.g. captions), all of one length.

    Batches are fetched by one indexing operation (``__getitems__``), not sample by sample.
    """

    def __init__(self, fields: Mapping[str, Union[torch.Tensor, Sequence]]):
        lengths = {name: len(value) for name, value in fields.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"fields of different lengths: {', '.join(f'{k} {n}' for k, n in lengths.items())}")
        self.fields = dict(fields)

    def __len__(self) -> int:
        return len(next(iter(self.fields.values())))

    def _batch(self, index) -> dict:
        batch = {}
        for name, value in self.fields.items():
            if isinstance(value, torch.Tensor):
                x = value[index]
                batch[name] = x.float().div_(127.5).sub_(1.0) if x.dtype == torch.uint8 else x
            elif isinstance(index, (int, slice)):
                batch[name] = value[index]
            else:
                batch[name] = [value[i] for i in index.tolist()]
        return batch

    def __getitem__(self, i: int) -> dict:
        return self._batch(i)

    def __getitems__(self, indices: list[int]) -> dict:
        return self._batch(torch.as_tensor(indices))

    def tensors(self) -> dict:
        """The whole split as one batch."""
        return self._batch(slice(None))


def fetch(dataset: Dataset, index: list[int]) -> dict:
    """The samples at ``index`` as one batch."""
    if isinstance(dataset, InMemory):
        return dataset.__getitems__(index)
    return default_collate([dataset[i] for i in index])


def take(dataset: Dataset, n: int) -> dict:
    """``n`` samples of ``dataset`` as one batch: the first ones, cycling through it when it has fewer (the
    fixed held-out batch previews and metrics are made from)."""
    return fetch(dataset, [i % len(dataset) for i in range(n)])


def to_device(batch: Mapping, device) -> dict:
    """``batch`` with its tensors on ``device``; other fields (captions, lists) pass through untouched."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _identity(batch):
    return batch


def _ignore_stop_signals(worker_id: int) -> None:
    """Loader workers leave SIGINT/SIGTERM (sent to the whole process group by Ctrl-C or a cluster's
    preemption) to the main process, which finishes its step and checkpoints; the loader then stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class EpochBatches(Sampler):
    """Index batches of one epoch: a permutation drawn from ``seed + epoch``, from batch ``start`` on. With
    ``shards`` > 1 (the ranks of a distributed run), every batch of ``batch_size`` is cut into that many equal
    parts and ``shard``'s part is yielded: the ranks see disjoint rows of the same global batches."""

    def __init__(self, n: int, batch_size: int, seed: int, shard: int = 0, shards: int = 1):
        if n < batch_size:
            raise ValueError(f"the training split has {n} samples, fewer than one batch of {batch_size}")
        if batch_size % shards:
            raise ValueError(f"a batch of {batch_size} cannot be split evenly over {shards} processes")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rows = slice(shard * batch_size // shards, (shard + 1) * batch_size // shards)
        self.epoch, self.start = 0, 0

    def __len__(self) -> int:
        return self.n // self.batch_size - self.start

    def __iter__(self):
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        for b in range(self.start, self.n // self.batch_size):
            yield perm[b * self.batch_size : (b + 1) * self.batch_size][self.rows].tolist()


class BatchStream:
    """An endless stream of shuffled batches whose position can be saved and restored exactly.

    The position is (epoch, batches consumed in it), counted on the consumer's side, so loader
    workers prefetching ahead never shift what a resumed run sees. ``shard`` of ``shards`` takes its part of
    every batch of ``batch_size`` (``EpochBatches``); the position is that of the global batches.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, num_workers: int = 0, shard: int = 0, shards: int = 1):
        self.sampler = EpochBatches(len(dataset), batch_size, seed, shard, shards)
        fast = isinstance(dataset, InMemory)  # a whole batch per fetch (torch's Subset has a list-valued one)
        self.loader = DataLoader(
            dataset,
            batch_sampler=self.sampler,
            collate_fn=_identity if fast else None,
            num_workers=num_workers,
            # its own generator: creating an iterator draws a worker seed, which must not shift the global RNG
            generator=torch.Generator().manual_seed(seed),
            worker_init_fn=_ignore_stop_signals if num_workers else None,
        )
        self.consumed = 0
        self._it: Optional[Iterator] = None

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        while True:
            if self._it is None:
                self.sampler.start = self.consumed
                self._it = iter(self.loader)
            try:
                batch = next(self._it)
                self.consumed += 1
                return batch
            except StopIteration:
                self._it = None
                self.sampler.epoch += 1
                self.consumed = 0

    def state_dict(self) -> dict:
        return {"epoch": self.sampler.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict) -> None:
        self.sampler.epoch, self.consumed = int(state["epoch"]), int(state["consumed"])
        self._it = None
