"""gantrain-generate: a grid of samples for prompts (text-to-image) or of any GAN checkpoint, never overwriting."""

import subprocess
import sys

import pytest
import torch
from PIL import Image

from gantrain.cli import train
from gantrain.generate import main
from gantrain.visualize import Grid, layout

from conftest import compose_config

TINY = ["trainer.steps=1", "trainer.batch_size=8", "trainer.num_samples=4", "trainer.eval_every=0", "trainer.ema=0.999"]


@pytest.fixture(scope="module")
def t2i_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("t2i")
    train(
        compose_config(["model=gan_int_cls", "dataset=captioned_digits", "model.generator.width=8", "model.discriminator.width=8", *TINY]),
        run,
    )
    return run


def size_of(rows: int, columns: int, column_labels=(), row_labels=()) -> tuple[int, int]:
    """The picture size of a grid of 16-px samples, as gantrain/visualize.py lays it out."""
    at = layout(Grid(torch.zeros(rows, columns, 1, 16, 16), column_labels, row_labels))
    return at.width, at.height


def test_a_prompt_gives_n_samples_in_a_grid_with_the_prompts_beside_it_and_is_never_overwritten(t2i_run, capsys):
    main([f"ckpt={t2i_run}", "prompt=a thick seven", "n=16"])
    path = t2i_run / "generated" / "a_thick_seven.png"
    assert "16 samples from the generator (EMA)" in capsys.readouterr().out
    assert Image.open(path).size == size_of(1, 16, row_labels=["a thick seven"])  # one labelled row of 16 samples
    assert path.with_suffix(".txt").read_text() == "row 1: a thick seven\n"
    before = path.read_bytes()
    with pytest.raises(SystemExit) as stop:
        main([f"ckpt={t2i_run}", "prompt=a thick seven", "n=16"])
    assert stop.value.code == 2 and path.read_bytes() == before
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists already: nothing is overwritten" in err


def test_several_prompts_give_one_row_each_and_without_a_prompt_the_held_out_captions(t2i_run, tmp_path):
    main([f"ckpt={t2i_run}", "prompt=[a thin one,a big eight]", "n=3", f"out={tmp_path / 'two.png'}"])
    assert Image.open(tmp_path / "two.png").size == size_of(2, 3, row_labels=["a thin one", "a big eight"])
    main([f"ckpt={t2i_run}", "n=4", f"out={tmp_path / 'plain.png'}"])
    assert Image.open(tmp_path / "plain.png").size == size_of(2, 2)  # held-out captions: a square grid


def test_any_gan_checkpoint_without_a_prompt_and_a_prompt_to_it_is_refused(compose, tmp_path, capsys):
    train(compose(["model=cgan", *TINY]), tmp_path / "run")
    main([f"ckpt={tmp_path / 'run'}", "n=20"])
    labels = [f"class {c}" for c in range(10)]
    assert Image.open(tmp_path / "run" / "generated" / "samples.png").size == size_of(2, 10, labels)  # a labelled column per class
    with pytest.raises(SystemExit):
        main([f"ckpt={tmp_path / 'run'}", "prompt=a seven", f"out={tmp_path / 'x.png'}"])
    assert "model=cgan does not take prompts" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "ckpt= is required"),
        (["ckpt=nowhere", "n=0"], "n=0 must be a positive integer"),
        (["ckpt=nowhere", "prompt=''"], "prompt= is empty"),
        (["ckpt=nowhere", "out=grid.jpg"], "give a .png file name"),
    ],
)
def test_bad_arguments_are_one_line_with_exit_code_2(args, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "gantrain.generate", *args], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1
