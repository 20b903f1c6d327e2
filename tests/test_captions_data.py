"""Captioned data: generated digit captions with held-out (class, property) combinations, and the user format."""

import json

import pytest
from PIL import Image

from gantrain.data.captions import NUMBERS, SYNONYMS, captioned_digits, captioned_folder, digit_thresholds, prompt, property_values
from gantrain.errors import ConfigError

HELD = [[7, "thick"], [3, "left"], [5, "small"]]


@pytest.fixture(scope="module")
def bundle():
    return captioned_digits(captions_per_image=2, heldout_combinations=HELD)


def _combos(split, thresholds):
    fields = split.tensors()
    values = property_values(fields["image"], fields["label"], thresholds)
    return {(int(y), v) for i, y in enumerate(fields["label"]) for p in values for v in [values[p][i]]}


def test_held_out_combinations_are_absent_from_training_and_present_in_the_held_out_split(bundle):
    thresholds = digit_thresholds()  # the whole training split's tertiles, as the source bins them
    seen, held = _combos(bundle.train, thresholds), _combos(bundle.heldout, thresholds)
    for label, value in HELD:
        assert (label, value) not in seen and (label, value) in held
    assert len(seen) == 10 * 9 - len(HELD)  # every other combination is trained on


def test_every_caption_names_its_class_and_uses_several_templates_and_synonyms(bundle):
    fields = bundle.train.tensors()
    assert bundle.spec.fields["text"] == "str" and len(fields["text"]) == len(fields["label"])
    for text, label in zip(fields["text"], fields["label"].tolist()):
        words = text.lower().replace(",", "").split()
        assert NUMBERS[label] in words or str(label) in words
    texts = " ".join(fields["text"]).lower()
    assert all(any(word in texts for word in words) for words in SYNONYMS.values())
    assert len({t.lower().split()[0] for t in fields["text"]}) >= 4
    assert (
        prompt(7, "thick") == "a thick seven" and prompt(8, "upright") == "an upright eight" and prompt(3, "left") == "a left-leaning three"
    )


def test_unknown_held_out_combinations_are_refused():
    with pytest.raises(ConfigError, match="each must be \\[class 0-9, value\\]"):
        captioned_digits(heldout_combinations=[[7, "bold"]])


def _folder(tmp_path, n=4):
    for i in range(n):
        Image.new("RGB", (10, 10), (40 * i, 0, 0)).save(tmp_path / f"img{i}.png")
    return tmp_path


def test_a_csv_or_jsonl_with_several_captions_per_image_gives_one_sample_per_pair_split_by_image(tmp_path):
    root = _folder(tmp_path)
    rows = [("img0.png", "a red square"), ("img0.png", "a dark square, again"), ("img1.png", "x"), ("img2.png", "y"), ("img3.png", "z")]
    (root / "captions.csv").write_text("image,caption\n" + "".join(f'{i},"{c}"\n' for i, c in rows), encoding="utf-8")
    (root / "captions.jsonl").write_text("".join(json.dumps({"image": i, "caption": c}) + "\n" for i, c in rows), encoding="utf-8")
    for name in ("captions.csv", "captions.jsonl"):
        b = captioned_folder(str(root), name, image_size=8, channels=3, holdout=0.25, seed=0)
        train, held = b.train.tensors(), b.heldout.tensors()
        assert len(train["text"]) + len(held["text"]) == 5 and train["image"].shape[1:] == (3, 8, 8)
        assert sorted(train["text"] + held["text"]) == sorted(c for _, c in rows)
        assert ("a red square" in held["text"]) == ("a dark square, again" in held["text"])  # one image, one split


@pytest.mark.parametrize(
    "content,message",
    [
        (b"image,caption\nimg0.png,\n", r"line 2: the caption of 'img0.png' is empty"),
        (b"image,caption\nimg9.png,a cat\n", r"line 2: image 'img9.png' is not a file"),
        (b"image,caption\nimg0.png,caf\xe9\n", r"line 2 is not UTF-8 text"),
        (b"path,text\nimg0.png,a\n", r"needs a header line with the columns image,caption"),
    ],
)
def test_bad_caption_files_are_refused_in_one_line(tmp_path, content, message):
    root = _folder(tmp_path)
    (root / "captions.csv").write_bytes(content)
    with pytest.raises(ConfigError, match=message) as err:
        captioned_folder(str(root), "captions.csv", image_size=8)
    assert "\n" not in str(err.value)


def test_a_missing_captions_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="is not a file"):
        captioned_folder(str(_folder(tmp_path)), "nope.csv", image_size=8)


def test_gan_int_cls_trains_on_a_captioned_folder(compose, tmp_path):
    from gantrain.cli import train

    (tmp_path / "data").mkdir()
    root = _folder(tmp_path / "data", n=8)
    (root / "c.jsonl").write_text("".join(json.dumps({"image": f"img{i}.png", "caption": f"square {i}"}) + "\n" for i in range(8)))
    cfg = compose(
        ["model=gan_int_cls", "dataset=captioned_folder", f"dataset.root={root}", "dataset.captions=c.jsonl", "dataset.image_size=8"]
        + [
            "model.generator.width=8",
            "model.discriminator.width=8",
            "trainer.steps=1",
            "trainer.batch_size=4",
            "trainer.num_samples=4",
            "trainer.eval_every=0",
        ]
    )
    assert "loss/G" in train(cfg, tmp_path / "run")
