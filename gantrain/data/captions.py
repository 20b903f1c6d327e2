"""Captioned images for text-to-image models: a batch's ``text`` field holds one caption (a str) per image.

``captioned_digits``: scikit-learn's digits, each with ``captions_per_image`` captions written from its class and
its measured properties (gantrain/metrics/properties.py: stroke width, slant, size), each binned into the class's
own tertiles (thin / regular / thick, left / upright / right, small / medium / large), with several templates
and synonyms. Some (class, property value) combinations are held out of training: every image showing one goes
to the held-out split (which also holds a stratified ``holdout`` share of the others), so a model can be asked
for a combination it never saw (``python scripts/caption_consistency.py``).

``captioned_folder``: the user format, a folder of images and a CSV (columns ``image``, ``caption``) or JSON-lines
(``{"image": …, "caption": …}``) file of captions, image paths relative to the folder; an image may have several
rows. Every (image, caption) pair is one sample; a ``holdout`` share of the images (with all their captions) is
held out. An empty caption, a missing or unreadable image and a file that is not UTF-8 are refused in one line.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Sequence

import torch
from sklearn.model_selection import train_test_split

from gantrain.data import DataBundle, DataSpec, InMemory
from gantrain.data.digits import digits
from gantrain.data.images import read_image
from gantrain.errors import ConfigError
from gantrain.metrics.properties import PROPERTIES, measure

Tensor = torch.Tensor
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# each property's three bins, low to high, by canonical name; then each name's words in captions
VALUES = {"stroke_width": ("thin", "regular", "thick"), "slant": ("left", "upright", "right"), "size": ("small", "medium", "large")}
SYNONYMS = {
    "thin": ("thin", "light", "fine"),
    "regular": ("regular", "medium-weight"),
    "thick": ("thick", "bold", "heavy"),
    "left": ("left-leaning", "left-slanted"),
    "upright": ("upright", "straight"),
    "right": ("right-leaning", "right-slanted"),
    "small": ("small", "little", "tiny"),
    "medium": ("medium-sized", "average-sized"),
    "large": ("large", "big"),
}
PROPERTY_OF = {value: prop for prop, values in VALUES.items() for value in values}
TEMPLATES = (
    "{a} {adj} {digit}",
    "{adj} {digit}",
    "the digit {digit}, {adj}",
    "{a} handwritten {digit} that is {adj}",
    "{a} {adj} {digit} written by hand",
)


def article(word: str) -> str:
    return "an" if word[0] in "aeiu" or word.startswith("eight") else "a"


def caption(label: int, values: Sequence[str], rng: random.Random) -> str:
    """One caption of a digit of class ``label`` with the property ``values`` (canonical names), in a random
    template with random synonyms."""
    digit = rng.choice((NUMBERS[label], str(label)))
    adj = " ".join(rng.choice(SYNONYMS[v]) for v in values)
    text = rng.choice(TEMPLATES).format(a=article(adj), adj=adj, digit=digit)
    return text[0].upper() + text[1:] if rng.random() < 0.3 else text


def prompt(label: int, value: str) -> str:
    """The canonical caption of a (class, value) combination, with the value's first word: "a thick seven",
    "a left-leaning three"."""
    word = SYNONYMS[value][0]
    return f"{article(word)} {word} {NUMBERS[label]}"


def property_thresholds(images: Tensor, labels: Tensor, num_classes: int = 10) -> dict[str, Tensor]:
    """Each property's tertiles per class (num_classes × 2), from ``images`` (a training split)."""
    measured = measure(images)
    q = torch.tensor([1 / 3, 2 / 3])
    return {p: torch.stack([torch.quantile(measured[p][labels == c], q) for c in range(num_classes)]) for p in PROPERTIES}


def property_values(images: Tensor, labels: Tensor, thresholds: dict[str, Tensor]) -> dict[str, list[str]]:
    """Each image's bin of each property (canonical names), against its class's tertiles."""
    measured = measure(images)
    out = {}
    for p in PROPERTIES:
        t = thresholds[p][labels]
        bins = (measured[p] > t[:, 0]).long() + (measured[p] > t[:, 1]).long()
        out[p] = [VALUES[p][b] for b in bins.tolist()]
    return out


def digit_thresholds(image_size: int = 16, holdout: float = 0.2, seed: int = 0) -> dict[str, Tensor]:
    """The tertiles ``captioned_digits`` bins by: those of the digits' whole training split (before the held-out
    combinations are taken out), to bin generated digits the same way."""
    train = digits(image_size, holdout, seed).train.tensors()
    return property_thresholds(train["image"], train["label"])


def parse_combinations(combinations: Sequence[Sequence]) -> list[tuple[int, str]]:
    """[[7, thick], …] → [(7, "thick"), …], each checked."""
    out = []
    for item in combinations:
        if len(item) != 2 or str(item[0]) not in map(str, range(10)) or item[1] not in PROPERTY_OF:
            raise ConfigError(
                f"dataset.heldout_combinations holds {list(item)!r}: each must be [class 0-9, value] with a value in {', '.join(PROPERTY_OF)}"
            )
        out.append((int(item[0]), str(item[1])))
    return out


def captioned_digits(
    image_size: int = 16,
    captions_per_image: int = 3,
    heldout_combinations: Sequence[Sequence] = ((7, "thick"), (3, "left"), (5, "small")),
    holdout: float = 0.2,
    seed: int = 0,
) -> DataBundle:
    """Digits with generated captions (``text``), their ``label`` and per-property bins; see the module."""
    if captions_per_image < 1:
        raise ConfigError(f"dataset.captions_per_image={captions_per_image} must be at least 1")
    held = set(parse_combinations(heldout_combinations))
    base = digits(image_size, holdout, seed)
    train, test = base.train.tensors(), base.heldout.tensors()
    thresholds = digit_thresholds(image_size, holdout, seed)
    images, labels = torch.cat([train["image"], test["image"]]), torch.cat([train["label"], test["label"]])
    values = property_values(images, labels, thresholds)
    per_image = [[values[p][i] for p in PROPERTIES] for i in range(len(labels))]
    shows_held = torch.tensor([any((int(y), v) in held for v in vs) for y, vs in zip(labels, per_image)])
    in_train = torch.zeros(len(labels), dtype=torch.bool)
    in_train[: len(train["label"])] = True
    rng = random.Random(seed)

    def split(mask: Tensor) -> InMemory:
        index = torch.nonzero(mask).flatten().tolist()
        rows = [
            (i, caption(int(labels[i]), rng.sample(per_image[i], rng.choice((1, 2))), rng))
            for i in index
            for _ in range(captions_per_image)
        ]
        idx = torch.tensor([i for i, _ in rows])
        return InMemory({"image": images[idx], "label": labels[idx], "text": [t for _, t in rows]})

    shape = (1, image_size, image_size)
    return DataBundle(
        train=split(in_train & ~shows_held),
        heldout=split(~in_train | shows_held),
        spec=DataSpec(kind="image", shape=shape, num_classes=10, fields={"image": shape, "label": (), "text": "str"}),
    )


# ------------------------------------------------------------------------------------------ the user format
def read_captions(path: Path) -> list[tuple[int, str, str]]:
    """(line number, image path, caption) of every row of a CSV (header ``image,caption``) or JSON-lines file."""
    if not path.is_file():
        raise ConfigError(f"dataset.captions={str(path)!r} is not a file: give a CSV (image,caption) or JSON-lines file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(f"{path} line {line} is not UTF-8 text (byte {err.start}): save the captions file as UTF-8") from None
    rows = []
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(
                    f'{path} line {n} is not JSON ({err.msg}): write one {{"image": …, "caption": …}} object per line'
                ) from None
            if not isinstance(record, dict) or "image" not in record or "caption" not in record:
                raise ConfigError(
                    f'{path} line {n} lacks an "image" or "caption" key: write one {{"image": …, "caption": …}} object per line'
                )
            rows.append((n, record["image"], record["caption"]))
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not {"image", "caption"} <= set(reader.fieldnames):
            raise ConfigError(f"{path} needs a header line with the columns image,caption (found {reader.fieldnames})")
        rows = [(reader.line_num, r["image"], r["caption"]) for r in reader]
    for n, image, text_ in rows:
        if not isinstance(image, str) or not image.strip():
            raise ConfigError(f"{path} line {n} has no image path")
        if not isinstance(text_, str) or not text_.strip():
            raise ConfigError(f"{path} line {n}: the caption of {image!r} is empty; write one or delete the line")
    if not rows:
        raise ConfigError(f"{path} holds no captions")
    return [(n, image.strip(), text_.strip()) for n, image, text_ in rows]


def captioned_folder(root: str, captions: str, image_size: int, channels: int = 3, holdout: float = 0.1, seed: int = 0) -> DataBundle:
    """The user format (see the module): ``captions`` is a path, relative to ``root`` unless absolute."""
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"dataset.root={root!r} is not a folder; point it at the folder of captioned images")
    if not 0 <= holdout < 1:
        raise ConfigError(f"dataset.source.holdout={holdout} is the fraction of images held out: use a value in [0, 1)")
    path = Path(captions).expanduser()
    rows = read_captions(path if path.is_absolute() else folder / path)
    files = sorted({image for _, image, _ in rows})
    pixels = {}
    for n, image, _ in rows:
        if image in pixels:
            continue
        file = folder / image
        if not file.is_file():
            raise ConfigError(f"{path.name} line {n}: image {image!r} is not a file under {str(folder)!r}")
        try:
            pixels[image] = read_image(file, channels, image_size)
        except OSError as err:
            raise ConfigError(f"{path.name} line {n}: image {image!r} does not decode ({err})") from None
    held: set[str] = set()
    if holdout and len(files) > 1:
        _, test = train_test_split(files, test_size=max(1, round(holdout * len(files))), random_state=seed)
        held = set(test)

    def split(keep) -> InMemory:
        chosen = [(image, t) for _, image, t in rows if keep(image)]
        return InMemory({"image": torch.stack([pixels[i] for i, _ in chosen]), "text": [t for _, t in chosen]})

    shape = (channels, image_size, image_size)
    train = split(lambda image: image not in held)
    return DataBundle(
        train=train,
        heldout=split(lambda image: image in held) if held else train,
        spec=DataSpec(kind="image", shape=shape, fields={"image": shape, "text": "str"}),
    )
