"""Run records are never rewritten by a refused run; a full disk, a damaged file, Ctrl-C before training and a
sweep job's folder each end in one line that says what happened and what to do."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

import gantrain.cli
import gantrain.run_dir
from gantrain import checkpoint
from gantrain.checkpoint import WriteError

from bad_input_kit import POINTS, QUIET

GANTRAIN = str(Path(sys.executable).parent / "gantrain")
BIG = ["model.generator.hidden=[512,512]", "model.discriminator.hidden=[512,512]"]  # a checkpoint of about 6 MB
LIMIT = 2_000_000  # RLIMIT_FSIZE of the full-disk run: its log, events and previews fit, its checkpoint does not
# a long override list: Hydra's override_dirname of these would be far longer than a file name may be
LONG = [
    *POINTS,
    *QUIET,
    "trainer.log_every=1",
    "trainer.sample_every=1000",
    "trainer.checkpoint_every=1000",
    "trainer.lr_decay_final=0.5",
    "trainer.grad_clip=100.0",
    "eval.batch_size=100",
    "eval.num_samples=1000",
    "eval.seed=7",
    "eval.precision_k=3",
    "eval.density_k=5",
    "eval.is_splits=10",
    "eval.kid_subsets=100",
    "eval.kid_subset_size=1000",
    "optimizer.lr=0.0002",
    "seed=0",
]


def checksums(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with its contents' hash (folders: None)."""
    return {str(p.relative_to(root)): p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))}


def start(args, cwd, env=None, limit_file_size=None) -> subprocess.Popen:
    def preexec():  # Python ignores SIGXFSZ: a write past the limit fails with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    return subprocess.Popen(
        [GANTRAIN, *args],
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        preexec_fn=preexec if limit_file_size else None,
    )


def finish(procs: dict, timeout: float = 300) -> dict:
    try:
        outputs = {name: proc.communicate(timeout=timeout) for name, proc in procs.items()}
        return {name: (procs[name].returncode, *outputs[name]) for name in procs}
    finally:  # no gantrain process outlives the fixture
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def experiment(root: Path) -> Path:
    """A config folder beside gantrain's with an experiment file that sweeps the loss (not the command line)."""
    (root / "extra" / "experiment").mkdir(parents=True)
    (root / "extra" / "experiment" / "swept.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n      loss: minimax,hinge\n"
    )
    return root / "extra"


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """The real ``gantrain`` in two waves of processes started together: first a run X, a sweep, a run on a
    "full disk" and a run interrupted while it trains its feature classifier; then, on X's finished folder, a
    new run refused there and a resume given X's checkpoint file (on a copy)."""
    root = tmp_path_factory.mktemp("records")
    cache = root / "cache"
    cache.mkdir()
    first = {
        "run": start([*POINTS, *QUIET, "hydra.run.dir=X"], root),
        "sweep": start(["-m", *LONG, "eval.cache_dir=cache/a,cache/b"], root),
        "full": start([*POINTS, *QUIET, *BIG, "hydra.run.dir=full"], root, limit_file_size=LIMIT),
        "ctrl_c": start(
            ["trainer.eval_every=1", "eval.classifier.epochs=1000", "hydra.run.dir=ctrl_c"], root, env={"GANTRAIN_CACHE_DIR": str(cache)}
        ),
        "config_sweep": start(
            ["-m", f"--config-dir={experiment(root)}", "experiment=swept", *POINTS, *QUIET, "hydra.sweep.dir=csweep"], root
        ),
    }
    log, deadline = root / "ctrl_c" / "gantrain.log", time.monotonic() + 240
    while not (log.is_file() and "training the feature classifier" in log.read_text()):
        assert first["ctrl_c"].poll() is None and time.monotonic() < deadline, "the classifier never started training"
        time.sleep(0.05)
    first["ctrl_c"].send_signal(signal.SIGINT)
    results = finish(first)
    assert results["run"][0] == 0, results["run"][2]
    shutil.copytree(root / "X", root / "Y")
    before = checksums(root / "X")
    second = {
        "refused": start([*POINTS, *QUIET, "loss=hinge", "hydra.run.dir=X"], root),
        "resume_file": start(["resume=Y/checkpoints/last.pt", "trainer.steps=3", "override_resume=true"], root),
    }
    results.update(finish(second))
    return root, before, results


def one_line(err: str) -> str:
    """The one line a run ends with on stderr: before it, only its progress bar (``mlp:  50%|…``)."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines, err
    assert not [line for line in lines[:-1] if line.strip() and not re.match(r"\w+: +\d+%\|", line)], err
    return lines[-1]


# ------------------------------------------------------------------------------------ the run record
def test_a_run_refused_in_a_finished_runs_folder_leaves_it_byte_for_byte(console):
    root, before, results = console
    returncode, out, err = results["refused"]
    assert returncode == 2
    assert one_line(err) == f"gantrain: error: {root / 'X'} already holds a run; pass resume={root / 'X'} to continue it"
    assert (root / "X" / ".hydra" / "config.yaml").is_file() and "gantrain.log" in before  # what Hydra would rewrite
    assert checksums(root / "X") == before


def test_resume_accepts_the_runs_checkpoint_file_and_keeps_its_record(console):
    root, _, results = console
    returncode, out, err = results["resume_file"]
    assert returncode == 0, err
    assert checkpoint.load(root / "Y" / "checkpoints" / "last.pt")["step"] == 3
    assert checksums(root / "Y" / ".hydra") == checksums(root / "X" / ".hydra")  # the original record
    assert re.search(rf"resumed {re.escape(str(root / 'Y'))} at step 2\n", (root / "Y" / "gantrain.log").read_text())


# ------------------------------------------------------------------------------------ a full disk
def test_a_checkpoint_that_does_not_fit_is_one_line_naming_folder_and_size_and_leaves_no_temporary_file(console):
    root, _, results = console
    returncode, out, err = results["full"]
    assert returncode == 1
    folder = root / "full" / "checkpoints"
    line = one_line(err)
    match = re.fullmatch(
        rf"gantrain: error: cannot write the checkpoint last.pt into {re.escape(str(folder))} \(File too large\): "
        r"it needs (\d+\.\d) MB, \d+\.\d MB are free there; free some space, then run the command again",
        line,
    )
    assert match, line
    assert float(match.group(1)) * 1e6 > LIMIT
    assert list(folder.iterdir()) == []  # neither last.pt nor a leftover last.pt.tmp


class FullDisk(io.FileIO):
    """A file that takes ``room`` bytes, then fails as a full disk does."""

    room = 1000

    def write(self, data):
        if self.tell() + len(data) > self.room:
            super().write(bytes(data)[: self.room - self.tell()])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def serialized_size(state) -> int:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return len(buffer.getvalue())


def test_a_failed_write_removes_its_temporary_file_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.pt"
    checkpoint.save({"step": 1, "w": torch.ones(3)}, path)
    state = {"step": 2, "w": torch.zeros(100_000)}
    monkeypatch.setattr(checkpoint, "open", lambda file, mode: FullDisk(file, mode), raising=False)
    with pytest.raises(WriteError) as err:
        checkpoint.save(state, path)
    message = str(err.value)
    assert err.value.errno == errno.ENOSPC and "\n" not in message
    assert message.startswith(
        f"cannot write the checkpoint last.pt into {path.parent} (No space left on device) (the previous last.pt is kept)"
    )
    assert f"it needs {serialized_size(state) / 1e6:.1f} MB" in message and message.endswith("free some space")
    assert os.listdir(path.parent) == ["last.pt"]
    old = checkpoint.load(path)
    assert old["step"] == 1 and torch.equal(old["w"], torch.ones(3))


def test_a_run_stopped_by_a_full_disk_resumes_to_the_weights_of_an_uninterrupted_run(compose, tmp_path, monkeypatch):
    config = [*POINTS, *QUIET, "trainer.steps=9", "trainer.checkpoint_every=3"]
    gantrain.cli.train(compose(config), tmp_path / "reference")
    reference = checkpoint.load(tmp_path / "reference" / "checkpoints" / "last.pt")["networks"]
    saves = []

    def fills_up_after_the_first_save(file, mode):
        saves.append(file)
        return open(file, mode) if len(saves) == 1 else FullDisk(file, mode)

    monkeypatch.setattr(checkpoint, "open", fills_up_after_the_first_save, raising=False)
    run = tmp_path / "run"
    with pytest.raises(WriteError, match=r"No space left on device\) \(the previous last.pt is kept\): it needs"):
        gantrain.cli.train(compose(config), run)
    assert len(saves) == 2 and os.listdir(run / "checkpoints") == ["last.pt"]
    assert checkpoint.load(run / "checkpoints" / "last.pt")["step"] == 3
    monkeypatch.undo()  # space freed
    gantrain.cli.train(compose([f"resume={run}"]), run, [f"resume={run}"])
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert state["step"] == 9 and state["networks"].keys() == reference.keys()
    assert all(torch.equal(state["networks"][k], reference[k]) for k in reference)


# ------------------------------------------------------------------------------------ Ctrl-C before training
def test_ctrl_c_while_the_feature_classifier_trains_is_one_line_and_caches_nothing(console):
    root, _, results = console
    returncode, out, err = results["ctrl_c"]
    assert returncode == 130
    assert one_line(err) == "gantrain: SIGINT received: stopped at once; no checkpoint yet: run the command again"
    assert list((root / "cache").rglob("*")) == []


# ------------------------------------------------------------------------------------ sweeps
def test_a_sweeps_job_folders_are_short_flat_and_named_by_the_swept_values(console):
    root, _, results = console
    returncode, out, err = results["sweep"]
    assert returncode == 0, err
    assert len(",".join(LONG)) > 255  # Hydra's override_dirname of these would not be a valid file name
    (sweep,) = (root / "outputs" / "multirun").glob("*/*")
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0_cache-a", "1_cache-b"]  # the `/` of the values nests no folder
    assert all((sweep / job / "checkpoints" / "last.pt").is_file() for job in jobs)


def test_a_sweep_from_an_experiment_file_names_its_job_folders_by_the_swept_values(console):
    root, _, results = console
    returncode, out, err = results["config_sweep"]
    assert returncode == 0, err
    jobs = sorted(p.name for p in (root / "csweep").iterdir() if p.is_dir())
    assert jobs == ["0_minimax", "1_hinge"]
    trained = [OmegaConf.create(checkpoint.load(root / "csweep" / job / "checkpoints" / "last.pt")["config"]).loss for job in jobs]
    assert [loss._target_ for loss in trained] == ["gantrain.losses.minimax", "gantrain.losses.hinge"]


@pytest.mark.parametrize(
    "path",
    [
        "/runs/0_minimax",
        "/my runs/0_loss=minimax,trainer.steps=10",
        "/it's/a [list]/x:y",
        '/q"uote\\/x',
        "/a b\\",
        "outputs/multirun/1_a-b_0.1",
    ],
)
def test_the_printed_resume_command_works_when_pasted(path):
    command = gantrain.run_dir.resume_command(path)
    program, arg = shlex.split(command)  # what the shell hands gantrain
    assert program == "gantrain"
    override = OverridesParser.create().parse_override(arg)  # what Hydra makes of it
    assert (override.key_or_group, override.value()) == ("resume", path)
    if re.fullmatch(r"[\w/.-]+", path):
        assert command == f"gantrain resume={path}"  # a plain path stays as it is


# ------------------------------------------------------------------------------------ --help
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_gantrain_eval_answers_help(flag, capsys):
    from gantrain.evaluate import main

    main([flag])
    out = capsys.readouterr().out
    assert out.startswith("usage: gantrain-eval ckpt=<run dir or checkpoint file>") and "metrics.json" in out


@pytest.mark.parametrize("run", ["/runs/plain", "/my runs/0_loss=minimax,trainer.steps=10"])
def test_the_nan_stop_message_gives_a_resume_command_that_works_when_pasted(run):
    from gantrain.loop.guards import NanGuard
    from gantrain.trainer import NonFiniteLoss

    guard = NanGuard("stop", Path(run))
    guard.admit(5, "generator", torch.tensor(float("nan")), {"loss/G": torch.tensor(float("nan"))})
    with pytest.raises(NonFiniteLoss) as stop:
        guard.check((Path(run) / "checkpoints" / "last.pt", 3))
    command = re.search(r"continue it with (.*) override_resume=true and a lower", str(stop.value)).group(1)
    program, arg = shlex.split(command)
    assert program == "gantrain" and OverridesParser.create().parse_override(arg).value() == run


# ------------------------------------------------------------------------------------ the feature cache
def test_a_cached_file_is_written_by_one_atomic_replace_of_a_temporary_file(tmp_path, monkeypatch):
    from gantrain.metrics.features import save_cached

    path = tmp_path / "features.pt"
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: replaced.append((Path(src), Path(dst))) or real_replace(src, dst))
    save_cached({"w": torch.arange(4.0)}, path)
    ((source, target),) = replaced  # one rename, onto the cached file itself
    assert target == path and source.parent == tmp_path and not source.exists()
    assert os.listdir(tmp_path) == ["features.pt"] and torch.equal(checkpoint.load(path)["w"], torch.arange(4.0))


@pytest.mark.parametrize("failure", ["full_disk", "ctrl_c"])
def test_a_failed_cache_write_removes_its_temporary_file_and_keeps_the_old_one(failure, tmp_path, monkeypatch):
    import gantrain.checkpoint
    from gantrain.metrics.features import save_cached

    path = tmp_path / "features.pt"
    save_cached({"w": torch.ones(3)}, path)
    if failure == "full_disk":
        monkeypatch.setattr(gantrain.checkpoint, "open", lambda file, mode: FullDisk(file, mode), raising=False)  # its one writer
        expected = pytest.raises(WriteError, match=rf"^cannot write the cached features.pt into {re.escape(str(tmp_path))} \(No space left")
    else:

        def interrupted(state, sink):
            sink.write(b"x" * 1000)  # a part of the file is written
            raise KeyboardInterrupt

        monkeypatch.setattr(torch, "save", interrupted)
        expected = pytest.raises(KeyboardInterrupt)
    with expected:
        save_cached({"w": torch.zeros(100_000)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["features.pt"]
    assert torch.equal(checkpoint.load(path)["w"], torch.ones(3))


def test_a_resume_removes_the_partial_checkpoint_a_killed_write_left(compose, tmp_path, caplog):
    run = tmp_path / "run"
    quick = [
        "model=mlp",
        "dataset=ring8",
        "dataset.source.n=256",
        "trainer.batch_size=32",
        "trainer.eval_every=0",
        "trainer.sample_every=100",
    ]
    gantrain.cli.train(compose(quick + ["trainer.steps=2"]), run)
    partial = run / "checkpoints" / "last.pt.tmp"
    partial.write_bytes(b"half a checkpoint")  # what kill -9 during torch.save leaves
    seen = []
    original = gantrain.cli.build_optimizers

    def spy(*args, **kwargs):  # before any training step: the partial file is already gone
        seen.append(partial.exists())
        return original(*args, **kwargs)

    overrides = ["trainer.steps=3", "override_resume=true"]
    with caplog.at_level("WARNING", logger="gantrain"), mock.patch.object(gantrain.cli, "build_optimizers", spy):
        gantrain.cli.train(compose([f"resume={run}", *overrides]), run, overrides=overrides)
    assert seen == [False] and "a checkpoint whose writing was interrupted" in caplog.text
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt"]
