"""Datasets: shapes, ranges, splits, mixture geometry, on-disk formats, the resumable batch stream and the random
state a resumed run restores."""

import math
import subprocess
import sys

import pytest
import torch

from gantrain.data import BatchStream, InMemory
from gantrain.data.digits import digits
from gantrain.data.folder import image_folder
from gantrain.data.mixtures import grid25, ring8
from gantrain.data.torchvision_sets import torchvision_dataset
from gantrain.errors import ConfigError


@pytest.mark.parametrize("size", [8, 16, 32])
def test_digits_shape_range_and_disjoint_stratified_split(size):
    bundle = digits(image_size=size, holdout=0.2)
    train, held = bundle.train.tensors(), bundle.heldout.tensors()
    assert train["image"].shape[1:] == (1, size, size) and bundle.spec.shape == (1, size, size)
    assert len(train["image"]) + len(held["image"]) == 1797
    assert train["image"].min() >= -1 and train["image"].max() <= 1
    assert train["image"].min() == -1 and train["image"].max() > 0.9  # background is -1, ink near +1
    assert torch.bincount(held["label"], minlength=10).min() >= 30  # every class held out
    # no training image appears in the held-out split
    flat_train, flat_held = train["image"].flatten(1), held["image"].flatten(1)
    assert torch.cdist(flat_held, flat_train).min() > 0


def test_ring8_geometry_follows_pacgan():
    bundle = ring8(n=20_000, seed=3)
    means = bundle.mixture.means
    angles = torch.atan2(means[:, 1], means[:, 0]) % (2 * math.pi)
    assert torch.allclose(torch.sort(angles).values, torch.arange(8) * 2 * math.pi / 8, atol=1e-6)
    assert torch.allclose(means.norm(dim=1), torch.ones(8), atol=1e-6)
    points = bundle.train.tensors()["image"]
    nearest = torch.cdist(points, means).min(dim=1).values
    assert points.shape == (20_000, 2) and abs(nearest.pow(2).mean().item() / 2 - 0.01**2) < 0.1 * 0.01**2
    assert bundle.spec.kind == "points" and bundle.spec.num_classes == 0


def test_grid25_geometry_and_seeded_draws():
    a, b, c = grid25(n=1000, seed=1), grid25(n=1000, seed=1), grid25(n=1000, seed=2)
    assert sorted(set(a.mixture.means.flatten().tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len(a.mixture.means) == 25 and a.mixture.std == 0.05
    assert torch.equal(a.train.tensors()["image"], b.train.tensors()["image"])
    assert not torch.equal(a.train.tensors()["image"], c.train.tensors()["image"])


def test_batch_stream_covers_each_epoch_and_resumes_exactly():
    data = InMemory({"image": torch.arange(50, dtype=torch.float32)[:, None], "label": torch.arange(50)})
    stream = BatchStream(data, batch_size=8, seed=0)
    epoch = torch.cat([next(stream)["label"] for _ in range(6)])  # 6 full batches per epoch, 2 dropped
    assert len(set(epoch.tolist())) == 48
    for _ in range(4):
        next(stream)
    state = stream.state_dict()
    expected = [next(stream)["label"] for _ in range(10)]  # crosses into the next epoch
    other = BatchStream(data, batch_size=8, seed=0)
    other.load_state_dict(state)
    assert all(torch.equal(x, next(other)["label"]) for x in expected)


def test_batch_stream_reshuffles_every_epoch_from_its_seed():
    data = InMemory({"image": torch.zeros(16, 1), "label": torch.arange(16)})

    def epochs(seed, n=3):
        stream = BatchStream(data, batch_size=4, seed=seed)
        return [torch.cat([next(stream)["label"] for _ in range(4)]).tolist() for _ in range(n)]

    orders = epochs(0)
    assert all(sorted(order) == list(range(16)) for order in orders)
    assert orders[0] != orders[1] and orders[1] != orders[2]  # a fresh permutation each epoch …
    assert epochs(0) == orders and epochs(1) != orders  # … drawn from the seed


def test_rng_state_round_trips_python_numpy_and_torch(tmp_path):
    """What checkpoint.rng_state saves (through a checkpoint file) puts every global generator back, including
    the Gaussian values Python and NumPy cache between calls."""
    import random

    import numpy as np

    from gantrain import checkpoint

    def draw():
        return random.random(), random.gauss(0, 1), np.random.rand(), np.random.standard_normal(), torch.rand(1).item()

    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    draw()  # leaves a cached Gaussian in random and numpy
    checkpoint.save(checkpoint.rng_state(), tmp_path / "rng.pt")
    expected = [draw() for _ in range(3)]
    checkpoint.set_rng_state(checkpoint.load(tmp_path / "rng.pt"))
    assert [draw() for _ in range(3)] == expected


def test_batch_stream_refuses_a_split_smaller_than_a_batch():
    with pytest.raises(ValueError, match="fewer than one batch"):
        BatchStream(InMemory({"image": torch.zeros(3, 2)}), batch_size=8, seed=0)


@pytest.mark.parametrize("name,channels", [("mnist", 1), ("fashion_mnist", 1), ("cifar10", 3)])
def test_torchvision_sets_read_their_on_disk_format(name, channels, torchvision_root, cifar_files_trusted):
    bundle = torchvision_dataset(name, root=str(torchvision_root), image_size=16)
    batch = bundle.train.tensors()
    n_train = 50 if name == "cifar10" else 40
    assert batch["image"].shape == (n_train, channels, 16, 16) and bundle.spec.num_classes == 10
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    assert len(bundle.heldout) in (10, 20)


def test_uint8_images_are_scaled_by_127_5_to_minus_one_one(torchvision_root):
    """x / 127.5 − 1: 0 → −1, 51 → −0.6, 255 → 1; MNIST at its own size is its raw pixels so scaled."""
    from torchvision import datasets

    data = InMemory({"image": torch.tensor([0, 51, 255], dtype=torch.uint8).view(3, 1, 1, 1)})
    assert data.tensors()["image"].flatten().tolist() == pytest.approx([-1.0, -0.6, 1.0])
    raw = datasets.MNIST(str(torchvision_root), train=True).data  # torchvision's own read of the IDX file
    images = torchvision_dataset("mnist", root=str(torchvision_root), image_size=28).train.tensors()["image"]
    assert torch.allclose(images, raw[:, None].float() / 127.5 - 1)


def test_torchvision_set_missing_files_gives_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="download=true"):
        torchvision_dataset("mnist", root=str(tmp_path))


def test_image_folder_with_and_without_class_labels(image_folder_root):
    labelled = image_folder(str(image_folder_root), image_size=16, labels=True, holdout=0.25)
    assert labelled.spec.num_classes == 3 and labelled.spec.shape == (3, 16, 16)
    item = labelled.train[0]
    assert item["image"].shape == (3, 16, 16) and 0 <= item["label"] < 3
    assert len(labelled.train) + len(labelled.heldout) == 24 and len(labelled.heldout) == 6
    train_files, held_files = ({split.dataset.files[i] for i in split.indices} for split in (labelled.train, labelled.heldout))
    assert not train_files & held_files and len(train_files | held_files) == 24  # every file in exactly one split
    flat = image_folder(str(image_folder_root), image_size=8, channels=1)
    assert flat.spec.num_classes == 0 and "label" not in flat.train[0] and flat.train[0]["image"].shape == (1, 8, 8)


def test_image_folder_pixels_are_scaled_to_minus_one_one(tmp_path):
    """Black, grey 51 and white files give −1, −0.6 and 1: ToTensor's x / 255, then Normalize(0.5, 0.5)."""
    from PIL import Image

    for value in (0, 51, 255):
        Image.new("RGB", (8, 8), (value,) * 3).save(tmp_path / f"{value}.png")
    dataset = image_folder(str(tmp_path), image_size=8).train.dataset
    for i, path in enumerate(dataset.files):
        expected = int(path.stem) / 127.5 - 1
        assert torch.allclose(dataset[i]["image"], torch.full((3, 8, 8), expected), atol=1e-6), path.name


def test_image_folder_refuses_a_missing_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        image_folder(str(tmp_path / "nope"))


LOADER_PROBE = """
import signal, sys, torch
from gantrain.data import BatchStream
from gantrain.data.folder import image_folder

class Probe(torch.utils.data.Dataset):  # reports the signal handlers of the process that loads it
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return [signal.getsignal(s) is signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM)]

ignored = next(BatchStream(Probe(), batch_size=4, seed=0, num_workers=1))
bundle = image_folder(sys.argv[1], image_size=8, labels=True, holdout=0.25)
images = next(BatchStream(bundle.train, batch_size=4, seed=0, num_workers=1))["image"]
print([bool(flag.all()) for flag in ignored], tuple(images.shape))
"""


def test_loader_workers_leave_stop_signals_to_the_main_process(image_folder_root, tmp_path):
    """With num_workers > 0, Ctrl-C / SIGTERM reach the whole process group: workers must ignore them so the
    main process can finish its step and checkpoint (gantrain/trainer.py). Checked in a fresh interpreter:
    forking loader workers out of a pytest-xdist worker (which runs threads) is not what users do."""
    out = tmp_path / "out.txt"
    with out.open("w") as f:  # a file, not a pipe: a stuck worker cannot hold the test open
        done = subprocess.run([sys.executable, "-c", LOADER_PROBE, str(image_folder_root)], stdout=f, stderr=subprocess.STDOUT, timeout=120)
    assert done.returncode == 0, out.read_text()
    assert out.read_text().strip() == "[True, True] (4, 3, 8, 8)"
