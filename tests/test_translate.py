"""The gantrain-translate command: what it refuses before any work, and that it writes nothing over a file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gantrain.cli
from gantrain.errors import ConfigError
from gantrain.translate import main, parse_args, plan, write

from conftest import QUICK, compose_config


def _images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("L", (8, 8), 128).save(folder / name)


def test_the_plan_keeps_file_names_matches_extensions_in_any_case_and_refuses_to_overwrite(tmp_path):
    _images(tmp_path / "in", ["b.PNG", "a.png", "c.JPG"])
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    pairs = plan(tmp_path / "in", tmp_path / "out")
    assert [(i.name, o.name) for i, o in pairs] == [("a.png", "a.png"), ("b.PNG", "b.PNG"), ("c.JPG", "c.JPG")]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b.PNG").write_bytes(b"an earlier result")
    with pytest.raises(ConfigError, match="1 output file.*exist already.*b.PNG"):
        plan(tmp_path / "in", tmp_path / "out")
    assert (tmp_path / "out" / "b.PNG").read_bytes() == b"an earlier result"
    with pytest.raises(ConfigError, match="is not a folder"):
        plan(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no image file"):
        plan(tmp_path / "empty", tmp_path / "out2")


def test_an_image_is_written_in_the_format_its_name_says_and_no_partial_file_stays(tmp_path):
    image = torch.linspace(-1, 1, 64).view(1, 8, 8)
    write(image, tmp_path / "x.png")
    write(image.expand(3, -1, -1), tmp_path / "y.jpg")
    assert Image.open(tmp_path / "x.png").format == "PNG" and Image.open(tmp_path / "y.jpg").format == "JPEG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png", "y.jpg"]


def test_arguments_are_checked_and_a_model_that_does_not_translate_is_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(ConfigError, match="output= is required"):
        parse_args(["ckpt=run", "input=in"])
    with pytest.raises(ConfigError, match="batch_size=0 must be a positive integer"):
        parse_args(["ckpt=run", "input=in", "output=out", "batch_size=0"])
    run = tmp_path / "run"
    gantrain.cli.train(compose_config(QUICK + ["model=mlp"]), run)
    _images(tmp_path / "in", ["a.png"])
    capsys.readouterr()  # the training's progress bar
    with pytest.raises(SystemExit) as stop:
        main([f"ckpt={run}", f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "gantrain-translate: error: model=mlp does not translate images: gantrain-translate needs an image-to-image model"
    assert not (tmp_path / "out").exists()


def test_a_pix2pix_run_translates_a_folder_as_its_network_does_and_lists_what_it_could_not_read(tmp_path, capsys):
    from gantrain import checkpoint
    from gantrain.cli import build_family
    from gantrain.data.images import read_image
    from gantrain.evaluate import run_config

    run = tmp_path / "run"
    tiny = ["model=pix2pix", "dataset=edges2digits", "model.generator.width=2", "model.discriminator.width=2"]
    gantrain.cli.train(compose_config(QUICK + tiny + ["trainer.batch_size=8", "model.generator.dropout_at_test=false"]), run)
    folder = tmp_path / "edges"
    folder.mkdir()
    for i, value in enumerate((0, 255, 90)):
        Image.new("L", (40, 24), value).save(folder / f"e{i}.png")  # not square, not 32 px: resized and cropped
    (folder / "broken.png").write_bytes(b"not a png")
    capsys.readouterr()
    main([f"ckpt={run}", f"input={folder}", f"output={tmp_path / 'out'}", "batch_size=2"])
    captured = capsys.readouterr()
    assert "skipped broken.png" in captured.err and "wrote 3 image(s)" in captured.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["e0.png", "e1.png", "e2.png"]

    state = checkpoint.load(run / "checkpoints" / "last.pt")
    family = build_family(run_config(state, {}))
    checkpoint.restore(family, state["networks"], "run")
    family.eval()
    with torch.no_grad():
        expected = family.translate(torch.stack([read_image(folder / f"e{i}.png", 1, 32) for i in range(3)]))
    for i in range(3):
        written = torch.from_numpy(np.asarray(Image.open(tmp_path / "out" / f"e{i}.png"), dtype="float32"))
        assert written.shape == (32, 32)
        assert (written / 255 * 2 - 1 - expected[i, 0]).abs().max() <= 1 / 255 + 1e-6  # 8-bit rounding only
    # a second call would overwrite: refused before anything is read or written
    with pytest.raises(SystemExit):
        main([f"ckpt={run}", f"input={folder}", f"output={tmp_path / 'out'}"])
    assert "3 output file(s) exist already" in capsys.readouterr().err


def test_a_spade_run_translates_class_index_maps_and_an_option_it_does_not_take_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    tiny = [
        "model=spade",
        "dataset=shapes2texture",
        "dataset.image_size=16",
        "dataset.source.train_size=16",
        "dataset.source.heldout_size=8",
        "model.generator.width=2",
        "model.generator.hidden=4",
        "model.discriminator.width=2",
    ]
    gantrain.cli.train(compose_config(QUICK + tiny + ["trainer.batch_size=4"]), run)
    maps = tmp_path / "maps"
    maps.mkdir()
    Image.fromarray(np.arange(16 * 16).reshape(16, 16).astype(np.uint8) % 4).save(maps / "m.png")
    Image.fromarray(np.full((16, 16), 9, np.uint8)).save(maps / "bad.png")  # class 9 of 4
    capsys.readouterr()
    main([f"ckpt={run}", f"input={maps}", f"output={tmp_path / 'out'}"])
    captured = capsys.readouterr()
    assert "wrote 1 image(s)" in captured.out and "skipped bad.png" in captured.err and "≥ dataset.num_classes=4" in captured.err
    assert Image.open(tmp_path / "out" / "m.png").size == (16, 16) and Image.open(tmp_path / "out" / "m.png").mode == "RGB"
    with pytest.raises(SystemExit):
        main([f"ckpt={run}", f"input={maps}", f"output={tmp_path / 'out2'}", "direction=BtoA"])
    assert capsys.readouterr().err.strip() == "gantrain-translate: error: model=spade: spade takes no translation options; got direction"
    assert not (tmp_path / "out2").exists()
