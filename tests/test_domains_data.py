"""Multi-domain data (gantrain/data/domains.py): the built-in digit styles pair each held-out digit with its true
rendering in another style; both folder layouts train; every malformed attribute CSV is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gantrain.cli import train
from gantrain.data import take
from gantrain.data.digit_domains import DOMAINS, digits_unit, render
from gantrain.data.domains import digit_styles, domains_folder
from gantrain.errors import ConfigError

TINY = [
    "model=stargan",
    "dataset.image_size=8",
    "model.generator.width=4",
    "model.generator.res_blocks=1",
    "model.discriminator.width=4",
    "trainer.steps=2",
    "trainer.batch_size=4",
    "trainer.d_steps=2",
    "trainer.num_samples=4",
    "trainer.log_every=1",
    "trainer.sample_every=2",
    "trainer.checkpoint_every=100",
    "trainer.eval_every=0",
]


def _match(images: torch.Tensor, renders: torch.Tensor) -> torch.Tensor:
    """For each image, the index of the identical rendering (asserting there is one)."""
    dist, idx = torch.cdist(images.flatten(1), renders.flatten(1), compute_mode="donot_use_mm_for_euclid_dist").min(1)
    assert dist.max() < 1e-5
    return idx


def test_digit_styles_pair_each_held_out_digit_with_its_true_rendering_in_another_style():
    bundle = digit_styles(image_size=8)
    train, held = bundle.train.tensors(), bundle.heldout.tensors()
    assert (
        bundle.spec.num_classes == 5
        and bundle.spec.shape == (3, 8, 8)
        and set(bundle.spec.fields) == {"image", "label", "source", "source_label"}
    )
    unit, _ = digits_unit(8)
    renders = torch.stack([render(unit, d, 3) for d in DOMAINS])  # every digit in every style
    origin, target = held["source_label"], held["label"]
    assert (origin != target).all() and set(target.tolist()) == set(origin.tolist()) == set(range(5))
    for k in range(5):  # each (source, image) pair is one digit rendered in its origin and in its target style
        for t in set(range(5)) - {k}:
            chosen = (origin == k) & (target == t)
            pairs = torch.cat([held["source"][chosen], held["image"][chosen]], 1)
            _match(pairs, torch.cat([renders[k], renders[t]], 1))
    for k in range(5):  # each training digit in one random style: every style appears
        chosen = train["label"] == k
        assert chosen.float().mean() > 0.15
        _match(train["image"][chosen], renders[k])
    assert len(train["label"]) + len(target) == len(unit) and len(target) == 360  # 20 % held out (scikit-learn rounds up)
    again = digit_styles(image_size=8).heldout.tensors()
    assert torch.equal(again["label"], target) and torch.equal(again["source"], held["source"])  # seeded
    grey = digit_styles(image_size=8, domains=["original", "inverted"])
    assert grey.spec.shape == (1, 8, 8) and torch.equal(grey.heldout.tensors()["image"], -grey.heldout.tensors()["source"])
    with pytest.raises(ConfigError, match="two or more different domains"):
        digit_styles(domains=["thick", "thick"])
    with pytest.raises(ConfigError, match="unknown digit domain 'bold'"):
        digit_styles(domains=["thick", "bold"])


def _images(folder, names, grey=False):
    rng = np.random.default_rng(0)
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (12, 10) if grey else (12, 10, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)


def test_one_subfolder_per_domain_trains_two_steps(compose, tmp_path):
    _images(tmp_path / "data", [f"{d}/{i}.png" for d in ("blond", "dark", "red") for i in range(4)])
    bundle = domains_folder(str(tmp_path / "data"), image_size=8, holdout=0.25)
    assert bundle.spec.num_classes == 3 and sorted({int(take(bundle.train, 9)["label"][i]) for i in range(9)}) == [0, 1, 2]
    cfg = compose(TINY + ["dataset=domains_folder", f"dataset.root={tmp_path / 'data'}"])
    logs = train(cfg, tmp_path / "run")
    assert cfg.dataset.num_classes == 3 and logs["loss/G_rec"] > 0
    assert (tmp_path / "run" / "samples" / "translation_step_0000002.png").is_file()
    (tmp_path / "one" / "only").mkdir(parents=True)
    with pytest.raises(ConfigError, match="has 1 subfolder.*one subfolder per domain"):
        domains_folder(str(tmp_path / "one"))
    with pytest.raises(ConfigError, match="picks columns of an attribute CSV"):
        domains_folder(str(tmp_path / "data"), selected=["blond"])


def _csv(folder, text):
    (folder / "attributes.csv").write_text(text)
    return folder


def test_images_with_an_attribute_csv_give_multi_label_domains_and_train_two_steps(compose, tmp_path):
    _images(tmp_path / "faces", [f"img/{i}.png" for i in range(8)])
    rows = "".join(f"img/{i}.png,{i % 2},{i // 4},{(i // 2) % 2}\n" for i in range(8))
    _csv(tmp_path / "faces", "file,smiling,glasses,hat\n" + rows)
    bundle = domains_folder(str(tmp_path / "faces"), image_size=8, attributes="attributes.csv", selected=["hat", "smiling"], holdout=0.25)
    assert bundle.spec.num_classes == 2 and bundle.spec.fields["attributes"] == (2,)
    everything = take(bundle.train, 6)["attributes"].tolist() + take(bundle.heldout, 2)["attributes"].tolist()
    assert sorted(everything) == sorted([[float((i // 2) % 2), float(i % 2)] for i in range(8)])
    cfg = compose(TINY + ["dataset=domains_folder", f"dataset.root={tmp_path / 'faces'}", "dataset.attributes=attributes.csv"])
    logs = train(cfg, tmp_path / "run")
    assert cfg.dataset.num_classes == 3 and logs["loss/D_cls"] > 0


BAD_CSV = [
    ("file,smiling\na.png,1\nb.png,1\nc.png,0\n", "line 4 names 'c.png', which is not a file"),
    ("file,smiling\na.png,1\nb.png,2\n", "line 3: attribute 'smiling' of 'b.png' is '2'; attributes are 0 or 1"),
    ("file,smiling\na.png,1\n", "1 image\\(s\\) under .* have no row in attributes.csv \\(e.g. 'b.png'\\)"),
    ("file,smiling\na.png,1,0\nb.png,0\n", "line 2: 2 values for 1 attributes"),
    ("file,smiling\na.png,1\nb.png,0\na.png,0\n", "line 4: 'a.png' already has a row \\(line 2\\)"),
    ("name,smiling\na.png,1\nb.png,0\n", "the first line must be the header file,attr_1"),
    ("file,smiling\na.png,yes\nb.png,0\n", "attribute 'smiling' of 'a.png' is 'yes'"),
]


@pytest.mark.parametrize("text, message", BAD_CSV)
def test_a_malformed_attribute_csv_is_refused_in_one_line_naming_the_row(tmp_path, text, message):
    _images(tmp_path, ["a.png", "b.png"])
    _csv(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as refused:
        domains_folder(str(tmp_path), image_size=8, attributes="attributes.csv")
    assert "\n" not in str(refused.value)


def test_attribute_csv_names_and_images_that_cannot_be_used_are_refused(tmp_path):
    _images(tmp_path, ["a.png", "b.png"], grey=True)
    _csv(tmp_path, "file,smiling\na.png,1\nb.png,0\n")
    with pytest.raises(ConfigError, match="selected names 'hat', which is not a column.*smiling"):
        domains_folder(str(tmp_path), attributes="attributes.csv", selected=["hat"])
    with pytest.raises(ConfigError, match="all single-channel.*dataset.channels=1"):
        domains_folder(str(tmp_path), attributes="attributes.csv")
    assert domains_folder(str(tmp_path), image_size=8, channels=1, attributes="attributes.csv", holdout=0.5).spec.shape == (1, 8, 8)
    with pytest.raises(ConfigError, match="no such file"):
        domains_folder(str(tmp_path), attributes="missing.csv")
    (tmp_path / "c.png").write_bytes(b"not an image")
    _csv(tmp_path, "file,smiling\na.png,1\nb.png,0\nc.png,1\n")
    with pytest.raises(ConfigError, match="line 4 names 'c.png', which is not an image gantrain reads"):
        domains_folder(str(tmp_path), channels=1, attributes="attributes.csv")
