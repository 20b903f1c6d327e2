"""Every mode Pillow reads reaches the batch in [-1, 1] from its true bit depth (gantrain/data/images.py):
16-bit and float files, palettes, transparency, CMYK, YCbCr, a GIF's first frame; extensions in any case;
what is skipped is counted."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from gantrain.data import fetch
from gantrain.data.folder import image_folder
from gantrain.errors import ConfigError

SIZE = 2  # 2×2 files read at image_size=2: no resampling between the file and the batch


def unit(values, depth=255):
    """Pixel values of a ``depth``-bit file in the model's range."""
    return torch.tensor(values, dtype=torch.float64) / depth * 2 - 1


def batch(root, channels=3, **kwargs) -> dict[str, torch.Tensor]:
    """Every image under ``root`` as it reaches a batch, by file name."""
    dataset = image_folder(str(root), image_size=SIZE, channels=channels, **kwargs).train.dataset
    images = fetch(dataset, list(range(len(dataset))))["image"]
    assert images.dtype == torch.float32 and images.shape[1:] == (channels, SIZE, SIZE)
    return {f.name: image.double() for f, image in zip(dataset.files, images)}


def save(root, name, img, **kwargs):
    root.mkdir(parents=True, exist_ok=True)
    img.save(root / name, **kwargs)


def colour(root):
    """An RGB file beside grey ones, so that a 3-channel folder is not refused as all grey."""
    save(root, "colour.png", Image.new("RGB", (SIZE, SIZE), (255, 0, 0)))


def close(actual, expected):
    return torch.allclose(actual, expected.to(actual.dtype), atol=1e-6)


GREY16 = np.array([[0, 32768], [65535, 16384]], dtype=np.uint16)


def test_a_16_bit_png_and_a_big_endian_16_bit_tiff_are_scaled_by_65535(tmp_path):
    save(tmp_path, "g16.png", Image.fromarray(GREY16))
    save(tmp_path, "g16b.tif", Image.frombytes("I;16B", (SIZE, SIZE), GREY16.astype(">u2").tobytes()))
    assert Image.open(tmp_path / "g16.png").mode == "I;16" and Image.open(tmp_path / "g16b.tif").mode == "I;16B"
    images = batch(tmp_path, channels=1)
    expected = unit(GREY16.astype(np.int64), 65535)[None]
    assert close(images["g16.png"], expected) and close(images["g16b.tif"], expected)
    assert images["g16.png"].flatten()[:3].tolist() == pytest.approx([-1, 1 / 65535, 1], abs=1e-6)  # 0, 32768, 65535


def test_16_bit_grey_is_repeated_for_three_channels(tmp_path):
    save(tmp_path, "g16.png", Image.fromarray(GREY16))
    colour(tmp_path)
    images = batch(tmp_path, channels=3)
    assert close(images["g16.png"], unit(GREY16.astype(np.int64), 65535)[None].expand(3, -1, -1))
    assert close(images["colour.png"], torch.tensor([1.0, -1, -1])[:, None, None].expand(3, SIZE, SIZE))


def test_a_float_tiff_is_read_as_zero_to_one(tmp_path):
    save(tmp_path, "f.tif", Image.fromarray(np.array([[0, 0.5], [1, 0.25]], dtype=np.float32)))
    save(tmp_path, "zero.tif", Image.fromarray(np.zeros((SIZE, SIZE), dtype=np.float32)))
    assert Image.open(tmp_path / "f.tif").mode == "F"
    assert close(batch(tmp_path, channels=1)["f.tif"], torch.tensor([[[-1, 0], [1, -0.5]]]))


def test_a_32_bit_integer_tiff_is_read_as_16_bit(tmp_path):
    values = np.array([[0, 1000], [65535, 32768]], dtype=np.int32)
    save(tmp_path, "i.tif", Image.fromarray(values))
    save(tmp_path, "other.tif", Image.fromarray(values))
    assert Image.open(tmp_path / "i.tif").mode == "I"
    assert close(batch(tmp_path, channels=1)["i.tif"], unit(values, 65535)[None])


@pytest.mark.parametrize(
    "values, message",
    [
        (np.array([[0, 1.5], [1, 0]], dtype=np.float32), r"1 of 2 mode-F images .* outside \[0, 1\] .*max 1.5\); .*as \[0, 1\]: rescale"),
        (np.array([[0, np.nan], [1, 0]], dtype=np.float32), r"1 of 2 mode-F images .* outside \[0, 1\]"),
        (
            np.array([[0, 70000], [-3, 0]], dtype=np.int32),
            r"1 of 2 mode-I images .* outside \[0, 65535\] .*min -3, max 70000\); .*as 16-bit",
        ),
    ],
    ids=["float_above_one", "float_nan", "int_above_16_bit"],
)
def test_wide_files_outside_their_range_are_refused_with_a_count(tmp_path, values, message):
    save(tmp_path, "bad.tif", Image.fromarray(values))
    save(tmp_path, "good.tif", Image.fromarray(np.zeros_like(values)))
    with pytest.raises(ConfigError, match=message):
        image_folder(str(tmp_path), image_size=SIZE, channels=1)


def test_one_bit_and_8_bit_grey(tmp_path):
    bits = Image.new("1", (SIZE, SIZE), 0)
    bits.putpixel((1, 0), 1)
    save(tmp_path, "bits.png", bits)
    save(tmp_path, "grey.png", Image.fromarray(np.array([[0, 51], [128, 255]], dtype=np.uint8)))
    images = batch(tmp_path, channels=1)
    assert close(images["bits.png"], torch.tensor([[[-1, 1], [-1, -1]]]))
    assert close(images["grey.png"], unit([[[0, 51], [128, 255]]]))


def test_grey_with_alpha_is_composited_on_black(tmp_path):
    la = Image.fromarray(np.array([[[200, 255], [200, 0]], [[200, 51], [100, 255]]], dtype=np.uint8), "LA")
    save(tmp_path, "la.png", la)
    save(tmp_path, "plain.png", Image.new("L", (SIZE, SIZE)))
    assert Image.open(tmp_path / "la.png").mode == "LA"
    expected = unit([[[200, 0], [200 * 51 / 255, 100]]])
    assert close(batch(tmp_path, channels=1)["la.png"], expected)


RGBA = np.array([[[255, 0, 0, 255], [0, 255, 0, 0]], [[0, 0, 255, 102], [100, 150, 200, 255]]], dtype=np.uint8)


def test_rgba_is_composited_on_black_and_made_grey_by_luma(tmp_path):
    save(tmp_path, "rgba.png", Image.fromarray(RGBA, "RGBA"))
    colour(tmp_path)
    premultiplied = RGBA[..., :3] * (RGBA[..., 3:] / 255)
    assert close(batch(tmp_path)["rgba.png"], unit(premultiplied.transpose(2, 0, 1)))
    luma = premultiplied @ np.array([0.299, 0.587, 0.114])
    assert close(batch(tmp_path, channels=1)["rgba.png"], unit(luma[None]))


PALETTE = [10, 20, 30, 200, 100, 50, 255, 255, 255]


def palette_image():
    img = Image.fromarray(np.array([[0, 1], [2, 1]], dtype=np.uint8), "P")
    img.putpalette(PALETTE)
    return img


def test_a_palette_png_reads_its_colours(tmp_path):
    save(tmp_path, "p.png", palette_image())
    colour(tmp_path)
    assert Image.open(tmp_path / "p.png").mode == "P"
    rgb = np.array(PALETTE).reshape(3, 3)[[[0, 1], [2, 1]]]
    assert close(batch(tmp_path)["p.png"], unit(rgb.transpose(2, 0, 1)))


def test_a_palette_png_with_a_transparent_colour_is_black_there(tmp_path):
    save(tmp_path, "pt.png", palette_image(), transparency=1)
    colour(tmp_path)
    assert "transparency" in Image.open(tmp_path / "pt.png").info
    rgb = np.array(PALETTE).reshape(3, 3)[[[0, 1], [2, 1]]] * np.array([[1, 0], [1, 0]])[..., None]
    assert close(batch(tmp_path)["pt.png"], unit(rgb.transpose(2, 0, 1)))


def test_cmyk_tiff_and_jpeg_and_ycbcr_tiff_are_converted_to_rgb(tmp_path):
    save(tmp_path, "cmyk.tif", Image.new("CMYK", (SIZE, SIZE), (55, 205, 245, 0)))
    save(tmp_path, "grey_k.tif", Image.new("CMYK", (SIZE, SIZE), (0, 0, 0, 128)))
    save(tmp_path, "cmyk.jpg", Image.new("CMYK", (8, 8), (55, 205, 245, 0)), quality=100)
    save(tmp_path, "ycbcr.tif", Image.new("YCbCr", (SIZE, SIZE), (76, 85, 255)))
    assert [Image.open(tmp_path / n).mode for n in ("cmyk.tif", "cmyk.jpg", "ycbcr.tif")] == ["CMYK", "CMYK", "YCbCr"]
    images = batch(tmp_path)
    orange = unit([200, 50, 10])[:, None, None].expand(3, SIZE, SIZE)
    assert close(images["cmyk.tif"], orange)
    assert torch.allclose(images["cmyk.jpg"], orange, atol=3 / 127.5)  # JPEG is lossy, even for one colour
    assert close(images["grey_k.tif"], unit([127] * 3)[:, None, None].expand(3, SIZE, SIZE))
    assert close(images["ycbcr.tif"], unit([254, 0, 0])[:, None, None].expand(3, SIZE, SIZE))


def test_an_animated_gif_gives_its_first_frame_and_extensions_match_in_any_case(tmp_path):
    first, second = Image.new("RGB", (SIZE, SIZE), (10, 20, 30)), Image.new("RGB", (SIZE, SIZE), (200, 100, 50))
    save(tmp_path, "anim.GIF", first, save_all=True, append_images=[second])
    save(tmp_path, "upper.PNG", Image.new("RGB", (SIZE, SIZE), (0, 255, 0)))
    save(tmp_path, "mixed.JpG", Image.new("RGB", (8, 8), (255, 255, 255)), format="JPEG", quality=100)
    assert Image.open(tmp_path / "anim.GIF").n_frames == 2
    images = batch(tmp_path)
    assert set(images) == {"anim.GIF", "upper.PNG", "mixed.JpG"}
    assert close(images["anim.GIF"], unit([10, 20, 30])[:, None, None].expand(3, SIZE, SIZE))
    assert close(images["upper.PNG"], unit([0, 255, 0])[:, None, None].expand(3, SIZE, SIZE))


def test_every_skipped_file_is_counted_by_kind_in_one_warning(tmp_path, caplog, monkeypatch):
    import gantrain.data.folder

    for name in ("a.png", "b.png", "c.png"):
        save(tmp_path, name, Image.new("RGB", (SIZE, SIZE)))
    save(tmp_path, "cmyk.tif", Image.new("CMYK", (SIZE, SIZE)))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not an image")
    (tmp_path / "notes.txt").write_text("shot in 2024")
    (tmp_path / ".DS_Store").write_bytes(b"\0")  # hidden: not looked at
    monkeypatch.setattr(gantrain.data.folder, "MODES", gantrain.data.folder.MODES - {"CMYK"})  # as if the reader knew no CMYK
    with caplog.at_level("WARNING", logger="gantrain.data.folder"):
        bundle = image_folder(str(tmp_path), image_size=SIZE)
    assert sorted(f.name for f in bundle.train.dataset.files) == ["a.png", "b.png", "c.png"]
    (line,) = caplog.messages
    assert line.startswith(f"skipped 3 of 6 files under {str(tmp_path)!r}: ")
    assert "1 not readable images (" in line and "broken.png" in line
    assert "1 of a mode gantrain does not read (" in line and "cmyk.tif: CMYK" in line
    assert "1 with no image extension (" in line and "notes.txt" in line and "DS_Store" not in line


def test_a_class_folder_whose_images_all_fail_to_read_is_refused_naming_it(tmp_path):
    for name in ("cats", "dogs"):
        for i in range(2):
            save(tmp_path / name, f"{i}.png", Image.new("RGB", (SIZE, SIZE)))
    (tmp_path / "birds").mkdir()
    (tmp_path / "birds" / "0.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match=r"dataset.labels=true: 1 of 3 class folders under .* hold no readable images \(birds\)"):
        image_folder(str(tmp_path), image_size=SIZE, labels=True)


def test_a_labelled_folder_keeps_every_class_and_its_label(tmp_path):
    for c, name in enumerate(("a", "b", "c")):
        for i in range(2):
            save(tmp_path / name, f"{i}.png", Image.new("RGB", (SIZE, SIZE), (100 * c,) * 3))
    bundle = image_folder(str(tmp_path), image_size=SIZE, labels=True, holdout=0.2)
    dataset = bundle.train.dataset
    labels = {f.parent.name: dataset[i]["label"] for i, f in enumerate(dataset.files)}
    assert labels == {"a": 0, "b": 1, "c": 2} and bundle.spec.num_classes == 3
    assert len(bundle.train) == 5 and len(bundle.heldout) == 1


@pytest.mark.parametrize("n, holdout", [(2, 0.0), (2, 0.5), (3, 0.3)])
def test_the_smallest_splits_that_work_hold_out_one_and_train_on_the_rest(tmp_path, n, holdout):
    for i in range(n):
        save(tmp_path, f"{i}.png", Image.new("RGB", (SIZE, SIZE)))
    bundle = image_folder(str(tmp_path), image_size=SIZE, holdout=holdout)
    assert len(bundle.heldout) == 1 and len(bundle.train) == n - 1


def test_resizing_and_cropping_keep_the_16_bit_values(tmp_path):
    """A 4×16 file read at size 2: shorter side 4 → 2, then the centre 2×2, which sees only the middle block."""
    wide = np.zeros((4, 16), dtype=np.uint16)
    wide[:, 4:12], wide[:, 12:] = 30000, 65535
    save(tmp_path, "wide.png", Image.fromarray(wide))
    save(tmp_path, "other.png", Image.fromarray(wide))
    image = batch(tmp_path, channels=1)["wide.png"]
    assert close(image, unit(np.full((1, SIZE, SIZE), 30000), 65535))


def png16(path, channels: np.ndarray, colour_type: int, transparent: tuple = ()) -> None:
    """``channels`` (H, W, k) as a 16-bit PNG of ``colour_type`` (2: RGB, 4: grey + alpha, 6: RGBA), which Pillow
    cannot write; ``transparent``: the 16-bit colour of its tRNS chunk."""
    height, width = channels.shape[:2]
    rows = b"".join(b"\0" + channels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    key = chunk(b"tRNS", struct.pack(f">{len(transparent)}H", *transparent)) if transparent else b""
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + key + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


ALPHA16 = np.array([[65535, 0], [32768, 65535]], dtype=np.uint16)


def test_a_16_bit_grey_png_with_a_transparent_value_is_black_there(tmp_path):
    save(tmp_path, "key.png", Image.fromarray(GREY16), transparency=16384)
    save(tmp_path, "plain.png", Image.fromarray(GREY16))
    assert Image.open(tmp_path / "key.png").mode == "I;16" and Image.open(tmp_path / "key.png").info["transparency"] == 16384
    images = batch(tmp_path, channels=1)
    assert close(images["key.png"], unit([[[0, 32768], [65535, 0]]], 65535))  # 16384 → black (−1), the rest as they are
    assert close(images["plain.png"], unit(GREY16.astype(np.int64), 65535)[None])


def test_16_bit_grey_alpha_and_rgba_pngs_are_composited_on_black(tmp_path):
    """Pillow reads both as 8-bit RGBA (the high byte of each 16-bit value): composited like the 8-bit files."""
    rgb = np.stack([GREY16, GREY16 // 2, 65535 - GREY16], axis=-1)
    png16(tmp_path / "la16.png", np.stack([GREY16, ALPHA16], axis=-1), colour_type=4)
    png16(tmp_path / "rgba16.png", np.concatenate([rgb, ALPHA16[..., None]], axis=-1), colour_type=6)
    colour(tmp_path)
    assert Image.open(tmp_path / "la16.png").mode == Image.open(tmp_path / "rgba16.png").mode == "RGBA"
    alpha = (ALPHA16 >> 8) / 255
    images = batch(tmp_path)
    assert close(images["la16.png"], unit(((GREY16 >> 8) * alpha)[None].repeat(3, axis=0)))
    assert close(images["rgba16.png"], unit(((rgb >> 8) * alpha[..., None]).transpose(2, 0, 1)))
    # spot values: 32768 at alpha 0 is black; 65535 at alpha 32768 is 255 · 128/255 = 128 of 255
    assert images["la16.png"][0, 0, 1] == -1 and images["la16.png"][0, 1, 0] == pytest.approx(128 / 255 * 2 - 1, abs=1e-6)


def test_a_16_bit_rgb_pngs_transparent_colour_is_black_there(tmp_path):
    """Pillow keeps the high byte of each 16-bit value: the key (1000, 500, 64535) is matched as (3, 1, 252)."""
    rgb = np.stack([GREY16, GREY16 // 2, 65535 - GREY16], axis=-1)
    rgb[1, 1] = (1000, 500, 64535)
    png16(tmp_path / "key16.png", rgb, colour_type=2, transparent=(1000, 500, 64535))
    colour(tmp_path)
    assert Image.open(tmp_path / "key16.png").mode == "RGB"
    expected = unit((rgb >> 8).transpose(2, 0, 1))
    expected[:, 1, 1] = -1
    assert close(batch(tmp_path)["key16.png"], expected)


def test_images_beside_the_class_folders_are_skipped_with_a_count(tmp_path, caplog):
    for name in ("cats", "dogs"):
        for i in range(2):
            save(tmp_path / name, f"{i}.png", Image.new("RGB", (SIZE, SIZE)))
    save(tmp_path, "stray.png", Image.new("RGB", (SIZE, SIZE)))
    save(tmp_path, "STRAY2.JPG", Image.new("RGB", (SIZE, SIZE)))
    with caplog.at_level("WARNING", logger="gantrain.data.folder"):
        bundle = image_folder(str(tmp_path), image_size=SIZE, labels=True, holdout=0.2)
    assert sorted(f.parent.name for f in bundle.train.dataset.files) == ["cats", "cats", "dogs", "dogs"]
    (line,) = caplog.messages
    assert line.startswith(f"skipped 2 of 6 files under {str(tmp_path)!r}: 2 outside the class folders (dataset.labels=true")
    assert "stray.png" in line and "STRAY2.JPG" in line
    caplog.clear()
    image_folder(str(tmp_path), image_size=SIZE, labels=False)  # without labels they are images like the others
    assert caplog.messages == []
