"""Shared fixtures: compose gantrain's config in-process and train small runs without a subprocess."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import gantrain.cli  # registers the resolvers train.yaml uses

CONFIG_DIR = str(gantrain.cli.config_dir())
# A few steps, no periodic work: fast enough for one run per test.
QUICK = [
    "trainer.steps=2",
    "trainer.batch_size=16",
    "trainer.log_every=1",
    "trainer.sample_every=100",
    "trainer.checkpoint_every=100",
    "trainer.num_samples=16",
    "trainer.eval_every=0",
]


def compose_config(overrides=()):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose("train", overrides=list(overrides))


@pytest.fixture
def quick():
    """Overrides for a two-step run with no periodic work."""
    return list(QUICK)


@pytest.fixture
def compose():
    """compose(overrides) -> the DictConfig that `gantrain <overrides>` would run."""
    return compose_config


@pytest.fixture(autouse=True, scope="session")
def _cache_in_tmp(tmp_path_factory):
    """Trained feature classifiers and real-data statistics go to a temporary folder, never the user's cache
    (also for the gantrain subprocesses the tests start)."""
    import os

    previous = os.environ.get("GANTRAIN_CACHE_DIR")
    os.environ["GANTRAIN_CACHE_DIR"] = str(tmp_path_factory.mktemp("gantrain-cache"))
    yield
    if previous is None:
        os.environ.pop("GANTRAIN_CACHE_DIR", None)
    else:
        os.environ["GANTRAIN_CACHE_DIR"] = previous


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One intra-op thread per test process: the test networks are tiny (one thread is faster), and
    `pytest -n 2` runs two processes on two cores without oversubscribing them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    yield


# ------------------------------------------------------------------ tiny datasets in their on-disk formats
def _write_idx(path: Path, array) -> None:
    """An IDX file as MNIST ships it (uncompressed): magic with type 0x08 (uint8) and ndim, sizes, data."""
    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    path.write_bytes(header + array.tobytes())


@pytest.fixture(scope="session")
def torchvision_root(tmp_path_factory):
    """A root holding tiny MNIST, FashionMNIST (IDX files) and CIFAR-10 (pickled batches) in torchvision's layout."""
    import pickle

    import numpy as np

    root = tmp_path_factory.mktemp("torchvision")
    rng = np.random.default_rng(0)
    for folder in ("MNIST", "FashionMNIST"):
        raw = root / folder / "raw"
        raw.mkdir(parents=True)
        for split, n in (("train", 40), ("t10k", 20)):
            _write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
            _write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    cifar = root / "cifar-10-batches-py"
    cifar.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), "labels": list(range(10))}
        (cifar / name).write_bytes(pickle.dumps(batch))
    (cifar / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))
    return root


@pytest.fixture
def cifar_files_trusted(monkeypatch):
    """torchvision checks CIFAR-10's files against the real archive's MD5s; the tiny files only need to exist."""
    import os

    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))


@pytest.fixture(scope="session")
def image_folder_root(tmp_path_factory):
    """Three class subfolders of small RGB PNGs of different sizes."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for c in range(3):
        (root / f"class{c}").mkdir()
        for i in range(8):
            size = (20 + i, 24)
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / f"class{c}" / f"{i}.png")
    return root


# ------------------------------------------------------------------ proving a resume resumed
@contextmanager
def counting_steps():
    """``with counting_steps() as taken:`` -> ``taken`` lists the step each ``Trainer.train_step`` call inside
    started from: a resumed leg from step c to ``steps`` must list exactly c, c + 1, …, steps - 1."""
    from gantrain.trainer import Trainer

    taken, inner = [], Trainer.train_step

    def counted(self, *args, **kwargs):
        taken.append(self.step)
        return inner(self, *args, **kwargs)

    Trainer.train_step = counted
    try:
        yield taken
    finally:
        Trainer.train_step = inner


def perturbed_copy(run_dir: Path, to: Path) -> str:
    """Copy ``run_dir`` to ``to`` and add 1 to one network weight of the copy's checkpoints/last.pt; returns
    that weight's key. Resuming the copy must end elsewhere than resuming the original: the checkpoint is used."""
    import shutil

    from gantrain import checkpoint

    shutil.copytree(run_dir, to)
    path = Path(to) / "checkpoints" / "last.pt"
    state = checkpoint.load(path)
    key = next(k for k, v in state["networks"].items() if v.is_floating_point())
    state["networks"][key] = state["networks"][key] + 1.0
    checkpoint.save(state, path)
    return key


def assert_three_plus_three_equals_six(overrides, tmp_path: Path) -> None:
    """A run of ``overrides`` stopped after 3 steps and resumed to 6 ends with exactly the weights (and every
    buffer: pools, running statistics) of an uninterrupted 6-step run. Keep ``trainer.lr_decay_start`` at 1: the
    decay's start is a fraction of ``trainer.steps``, which differs between the legs."""
    from gantrain import checkpoint
    from gantrain.cli import train

    common = list(overrides) + ["trainer.sample_every=100", "trainer.checkpoint_every=3", "trainer.eval_every=0"]
    train(compose_config(common + ["trainer.steps=6"]), tmp_path / "full")
    train(compose_config(common + ["trainer.steps=3"]), tmp_path / "part")
    resumed = ["trainer.steps=6", "override_resume=true"]
    train(compose_config([f"resume={tmp_path / 'part'}", *resumed]), tmp_path / "part", overrides=resumed)
    full = checkpoint.load(tmp_path / "full" / "checkpoints" / "last.pt")["networks"]
    part = checkpoint.load(tmp_path / "part" / "checkpoints" / "last.pt")["networks"]
    assert full.keys() == part.keys() and all(torch.equal(full[k], part[k]) for k in full)


# ------------------------------------------------------------------ reading previews back
def preview_cells(path, grid):
    """The cells of the preview PNG at ``path`` that drew ``grid`` (a gantrain.visualize.Grid of the same shape),
    as rows × columns × H×W×3 uint8 arrays cut at the layout's positions, and the layout."""
    import numpy as np
    from PIL import Image

    from gantrain.visualize import layout

    at = layout(grid)
    picture = np.asarray(Image.open(path).convert("RGB"))
    assert picture.shape[:2] == (at.height, at.width)
    cells = [[picture[y : y + at.cell_height, x : x + at.cell_width] for x in at.left] for y in at.top]
    return np.array(cells), at


def upscaled(images, scale):
    """Images N×C×H×W in [-1, 1] as the PNG shows them: uint8 RGB, each pixel a scale × scale block (N×H×W×3)."""
    import numpy as np

    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round()
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    return np.asarray(x.repeat_interleave(scale, -2).repeat_interleave(scale, -1).permute(0, 2, 3, 1).to(torch.uint8))


def grouped(grid):
    """The cells of ``Grid.of_groups``'s grid sample by sample: N × k × C×H×W (k the cells of a sample's group;
    the blank groups that fill the last row dropped)."""
    rows, columns = grid.images.shape[:2]
    k = grid.breaks[0] if grid.breaks else columns
    groups = grid.images.unflatten(1, (columns // k, k)).flatten(0, 1)
    return groups[~groups.flatten(1).isnan().all(1)]
