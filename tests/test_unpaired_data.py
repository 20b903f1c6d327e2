"""Unpaired data (gantrain/data/unpaired.py): the pairing rule, the built-in digit domains with their hidden true
translations, and the CycleGAN folder layout — each layout a test writes trains two steps, each malformed one is
refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gantrain.cli import build_data, train
from gantrain.data import BatchStream
from gantrain.data.digit_domains import digits_unit, render
from gantrain.data.unpaired import digit_domains, pairing, unpaired_folder
from gantrain.errors import ConfigError

FOLDER_RUN = [
    "model=cyclegan",
    "dataset=unpaired_folder",
    "dataset.image_size=16",
    "model.G_AB.width=4",
    "model.G_AB.blocks=1",
    "model.D_A.width=4",
    "model.D_A.n_layers=2",
    "trainer.steps=2",
    "trainer.batch_size=2",
    "trainer.log_every=1",
    "trainer.sample_every=2",
    "trainer.num_samples=2",
    "trainer.eval_every=0",
]


def write_images(folder: Path, n: int, mode: str = "RGB", size=(20, 16), seed: int = 0) -> None:
    """``n`` random non-square images of ``mode``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"img_{i}.png")


def test_pairing_covers_both_domains_of_different_sizes_as_a_fixed_function_of_the_seed():
    ia, ib = pairing(3, 7, seed=0)
    assert len(ia) == len(ib) == 7
    assert sorted(ib.tolist()) == list(range(7)) and sorted(set(ia.tolist())) == [0, 1, 2]
    assert all(torch.equal(x, y) for x, y in zip(pairing(3, 7, seed=0), (ia, ib)))
    assert not torch.equal(pairing(3, 7, seed=1)[1], ib)


def test_digit_domains_train_on_disjoint_digits_and_hold_out_true_translations():
    bundle = digit_domains(image_size=8, domain_a="original", domain_b="inverted", holdout=0.2)
    images, labels = digits_unit(8)
    originals, inverted = render(images, "original").flatten(1), render(images, "inverted").flatten(1)

    def which(rows, table):  # each row's digit index (the digits are distinct)
        return torch.cdist(rows.flatten(1), table).argmin(1)

    train, held = bundle.train.tensors(), bundle.heldout.tensors()
    a, b, h = which(train["source"], originals), which(train["image"], inverted), which(held["source"], originals)
    assert not set(a.tolist()) & set(b.tolist()) and not set(h.tolist()) & (set(a.tolist()) | set(b.tolist()))
    assert len(set(a.tolist()) | set(b.tolist()) | set(h.tolist())) == len(labels)  # every digit used once
    assert torch.equal(held["image"], render(images[h], "inverted")) and torch.equal(held["label"], labels[h])
    assert torch.equal(train["label"], labels[b])  # B's class, what the evaluator's classifier learns
    assert bundle.spec.fields == {"source": (1, 8, 8), "image": (1, 8, 8), "label": ()}


def test_digit_domains_refuse_a_channel_count_other_than_the_domains():
    with pytest.raises(ConfigError, match=r"original → tinted have 3 channel\(s\): pass dataset.channels=3 dataset.source_channels=3"):
        digit_domains(image_size=8, domain_a="original", domain_b="tinted")
    with pytest.raises(ConfigError, match="unknown digit domain 'bold'"):
        digit_domains(image_size=8, domain_b="bold")


def test_a_resumed_stream_over_unpaired_files_sees_the_same_batches(tmp_path):
    write_images(tmp_path / "trainA", 3)
    write_images(tmp_path / "trainB", 5, seed=1)
    train_split = unpaired_folder(str(tmp_path), image_size=8, holdout=0.25).train
    full = BatchStream(train_split, 2, seed=0)
    batches = [next(full) for _ in range(5)]
    resumed = BatchStream(train_split, 2, seed=0)
    for _ in range(2):
        next(resumed)
    restarted = BatchStream(train_split, 2, seed=0)
    restarted.load_state_dict(resumed.state_dict())
    for expected in batches[2:]:
        got = next(restarted)
        assert torch.equal(got["source"], expected["source"]) and torch.equal(got["image"], expected["image"])


@pytest.mark.parametrize(
    "layout,overrides,samples",
    [  # samples: max(|A|, |B|) of the training images (a quarter of a domain held out without its test folder)
        ({"trainA": (3, "RGB"), "trainB": (5, "RGB"), "testA": (2, "RGB"), "testB": (1, "RGB")}, [], 5),
        ({"trainA": (4, "L"), "trainB": (3, "RGB")}, ["dataset.source_channels=1", "model.identity_weight=0"], 3),
        ({"trainA": (3, "RGB"), "trainB": (2, "L"), "trainB/more": (2, "RGB")}, [], 3),
    ],
    ids=["domains_of_different_sizes_with_test_folders", "grey_A_to_rgb_B_held_out_from_train", "mixed_grey_and_rgb_B"],
)
def test_each_folder_layout_trains_two_steps(compose, tmp_path, layout, overrides, samples):
    root = tmp_path / "data"
    for i, (name, (n, mode)) in enumerate(layout.items()):
        write_images(root / name, n, mode, seed=i)
    cfg = compose([*FOLDER_RUN, f"dataset.root={root}", "dataset.source.holdout=0.25", *overrides])
    bundle = build_data(cfg.copy())
    sample = bundle.train[0]
    assert sample["source"].shape == (cfg.dataset.source_channels, 16, 16) and sample["image"].shape == (3, 16, 16)
    assert len(bundle.train) == samples
    logs = train(cfg, tmp_path / "run")
    assert all(np.isfinite(logs[k]) for k in ("loss/cycle", "loss/D_A", "loss/D_B"))
    assert (tmp_path / "run" / "samples" / "translation_step_0000002.png").is_file()


@pytest.mark.parametrize(
    "layout,message",
    [
        ({"trainA": 3}, "has no trainB/ folder: the layout is trainA/, trainB/"),
        ({"trainA": 3, "trainB": 0}, "trainB' holds no readable image"),
        ({"trainA": 1, "trainB": 3}, "trainA' has 1 image.* and there is no testA/"),
    ],
    ids=["missing_trainB", "empty_domain", "nothing_left_to_train_on"],
)
def test_malformed_layouts_are_refused_in_one_line(tmp_path, layout, message):
    for name, n in layout.items():
        write_images(tmp_path / name, n)
    if "trainB" in layout:
        (tmp_path / "trainB" / "notes.txt").write_text("not an image")
    with pytest.raises(ConfigError, match=message) as err:
        unpaired_folder(str(tmp_path), image_size=8)
    assert "\n" not in str(err.value)


def test_a_grey_domain_is_refused_for_three_channels_never_broadcast(tmp_path):
    write_images(tmp_path / "trainA", 3, "L")
    write_images(tmp_path / "trainB", 3)
    with pytest.raises(
        ConfigError, match=r"trainA' are all single-channel \(grey\) but dataset.source_channels=3: pass dataset.source_channels=1"
    ):
        unpaired_folder(str(tmp_path), image_size=8)
