"""Bad-input cases of image folders (gantrain/data/folder.py, gantrain/data/images.py): no file of an image
type, an empty class, a split with nothing held out or nothing to train on, 32-bit files outside their range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bad_input_kit import folder_case, garbage, images


def made(build, *extra):
    """Overrides for dataset=image_folder on the folder ``build(root)`` fills."""

    def setup(tmp: Path, run: Path) -> list[str]:
        root = tmp / "data"
        root.mkdir()
        build(root)
        return ["dataset=image_folder", f"dataset.root={root}", "dataset.image_size=16", *extra]

    return setup


def not_images(root: Path) -> None:
    (root / "notes.txt").write_text("holiday photos")
    (root / "photo.heic").write_bytes(b"\0" * 64)


def classes_with_an_empty_one(root: Path) -> None:
    images(root / "cats", 3)
    images(root / "dogs", 3)
    (root / "birds").mkdir()


def classes_with_an_unreadable_one(root: Path) -> None:
    images(root / "cats", 3)
    images(root / "dogs", 3)
    garbage(root / "birds", 2)


def wide(values: np.ndarray):
    def build(root: Path) -> None:
        images(root, 3)
        Image.fromarray(values).save(root / "wide.tif")

    return build


# batches of one image, which batch norm refuses: a model without it
NO_BATCH_NORM = ["model=mlp", "model.generator.batch_norm=false"]

CASES = {
    "folder_of_only_other_file_types": (
        made(not_images),
        r"no images \(.*\.gif.*\) under '.*data' \(its 2 files have other extensions, e\.g\. '.*'\); point dataset.root at a folder",
    ),
    "folder_class_without_images": (
        made(classes_with_an_empty_one, "dataset.labels=true", "trainer.batch_size=2"),
        r"dataset.labels=true: 1 of 3 class folders under '.*data' hold no readable images \(birds\); add images to them or move",
    ),
    "folder_class_of_only_unreadable_files": (
        made(classes_with_an_unreadable_one, "dataset.labels=true", "trainer.batch_size=2"),
        r"dataset.labels=true: 1 of 3 class folders .* hold no readable images \(birds\)",
    ),
    "folder_of_one_image": (
        folder_case(rgb=1, extra=[*NO_BATCH_NORM, "trainer.batch_size=1"]),
        r"dataset.root='.*data' has 1 usable image: with dataset.source.holdout=0.05 none is left to train on \(a run holds out at least 1 .*\); add images",
    ),
    "folder_holdout_takes_every_image": (
        folder_case(rgb=2, extra=[*NO_BATCH_NORM, "trainer.batch_size=1", "dataset.source.holdout=0.9"]),
        r"has 2 usable images: with dataset.source.holdout=0.9 none is left to train on .*; add images or lower dataset.source.holdout",
    ),
    "folder_holdout_above_one": (
        folder_case(rgb=4, extra=["dataset.source.holdout=1.5"]),
        r"dataset.source.holdout=1.5 is the fraction of images held out: use a value in \[0, 1\)",
    ),
    "folder_holdout_negative": (
        folder_case(rgb=4, extra=["dataset.source.holdout=-0.1", "trainer.batch_size=2"]),
        r"dataset.source.holdout=-0.1 is the fraction of images held out",
    ),
    "folder_float_image_above_one": (
        made(wide(np.full((4, 4), 2.0, dtype=np.float32)), "trainer.batch_size=2"),
        r"1 of 1 mode-F images under '.*data' hold values outside \[0, 1\] \(e.g. '.*wide.tif': min 2, max 2\); .*rescale them",
    ),
    "folder_int_image_beyond_16_bit": (
        made(wide(np.full((4, 4), 100_000, dtype=np.int32)), "trainer.batch_size=2"),
        r"1 of 1 mode-I images under '.*data' hold values outside \[0, 65535\] .*reads 32-bit integer \(mode I\) images as 16-bit",
    ),
}
