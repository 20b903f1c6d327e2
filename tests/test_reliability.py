"""Runs survive faults: atomic checkpoints, SIGINT/SIGTERM, kill -9 + resume, NaN/Inf policy, safe loading."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import gantrain.cli
import gantrain.losses
from gantrain import checkpoint
from gantrain.errors import ConfigError
from gantrain.losses import GANLoss
from gantrain.trainer import Interrupted, NonFiniteLoss, Trainer

from conftest import counting_steps, perturbed_copy

# The original GAN on the 25-Gaussian grid, shrunk to milliseconds per step.
TINY = [
    "model=mlp",
    "dataset=grid25",
    "model.latent_dim=4",
    "model.generator.hidden=[16,16]",
    "model.discriminator.hidden=[16,16]",
    "model.discriminator.pieces=2",
    "dataset.source.n=512",
    "trainer.batch_size=32",
    "trainer.log_every=4",
    "trainer.sample_every=1000",
    "trainer.checkpoint_every=3",
    "trainer.num_samples=16",
    "trainer.eval_every=0",
    "trainer.device=cpu",
]


STEPS = 40


def networks(run_dir: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(run_dir / "checkpoints" / "last.pt")["networks"]


def assert_same_networks(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def resume(compose, run_dir: Path, extra=()) -> dict:
    overrides = [f"resume={run_dir}", *extra]
    return gantrain.cli.train(compose(overrides), run_dir, overrides)


def assert_resumes_exactly(compose, run: Path, stopped_at: int, reference: dict, tmp_path: Path) -> None:
    """Resuming ``run`` (checkpointed at step ``stopped_at``) runs steps ``stopped_at`` … STEPS - 1 only and
    reaches ``reference``; the same checkpoint with one weight changed does not."""
    weight = perturbed_copy(run, tmp_path / "perturbed")
    for run_dir in (run, tmp_path / "perturbed"):
        with counting_steps() as taken:
            resume(compose, run_dir)
        assert taken == list(range(stopped_at, STEPS))
        assert checkpoint.load(run_dir / "checkpoints" / "last.pt")["step"] == STEPS
    assert_same_networks(networks(run), reference)
    assert not torch.equal(networks(tmp_path / "perturbed")[weight], reference[weight])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: the parameters every interrupted-and-resumed run must reach."""
    from conftest import compose_config

    run = tmp_path_factory.mktemp("reference") / "run"
    gantrain.cli.train(compose_config([*TINY, f"trainer.steps={STEPS}"]), run)
    return networks(run)


# ------------------------------------------------------------------------------------ atomic writes
def test_checkpoint_killed_mid_write_leaves_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save({"step": 1, "w": torch.ones(3)}, path)

    def dies_midway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # the process dies while writing

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"step": 2, "w": torch.zeros(3)}, path)
    state = checkpoint.load(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))


# ------------------------------------------------------------------------------------ signals
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_checkpoints_the_step_and_resume_matches_an_uninterrupted_run(signum, compose, tmp_path, monkeypatch, reference):
    if threading.current_thread() is not threading.main_thread():  # os.kill would interrupt pytest itself
        pytest.skip("signals reach only the main thread, and this test runs in another")
    run = tmp_path / "run"
    handler_before = signal.getsignal(signum)
    original = Trainer.train_step

    def step_then_signal(self, measure=False):
        logs = original(self, measure)
        if self.step == 7:  # the signal arrives in the middle of the loop, between two checkpoints
            os.kill(os.getpid(), signum)
        return logs

    monkeypatch.setattr(Trainer, "train_step", step_then_signal)
    with pytest.raises(Interrupted) as stop:
        gantrain.cli.train(compose([*TINY, f"trainer.steps={STEPS}"]), run)
    assert (stop.value.signum, stop.value.step) == (signum, 7)
    assert checkpoint.load(run / "checkpoints" / "last.pt")["step"] == 7
    assert signal.getsignal(signum) is handler_before  # the loop's handler is gone with the loop

    monkeypatch.setattr(Trainer, "train_step", original)
    assert_resumes_exactly(compose, run, 7, reference, tmp_path)


def _gantrain(args, cwd) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "gantrain"), *args],
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _wait_for_checkpoint(path: Path, proc: subprocess.Popen, step: int = 1, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or checkpoint.load(path)["step"] < step:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never reached step {step}"
        time.sleep(0.002)


@pytest.fixture(scope="module")
def console_runs(tmp_path_factory):
    """Two real ``gantrain`` processes started together (each start costs seconds): one gets SIGTERM after
    its first checkpoint, the other ``kill -9`` at a random step while it checkpoints every step (so the
    kill may land inside a checkpoint write)."""
    root = tmp_path_factory.mktemp("console")
    term_run, kill_run = root / "term", root / "kill"
    term = _gantrain([*TINY, "trainer.steps=1000000", f"hydra.run.dir={term_run}"], root)
    kill = _gantrain(
        [*TINY, f"trainer.steps={STEPS}", "trainer.checkpoint_every=1", "trainer.log_every=1", f"hydra.run.dir={kill_run}"], root
    )
    try:
        target = random.randint(2, STEPS - 15)
        _wait_for_checkpoint(kill_run / "checkpoints" / "last.pt", kill, target)
        time.sleep(random.uniform(0.0, 0.01))
        kill.kill()
        kill.communicate()
        _wait_for_checkpoint(term_run / "checkpoints" / "last.pt", term)
        term.send_signal(signal.SIGTERM)
        out, err = term.communicate(timeout=120)
    finally:  # whatever failed above, no gantrain process outlives the fixture
        for proc in (term, kill):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return {"term": (term_run, term.returncode, out, err), "kill": (kill_run, target)}


def test_sigterm_to_the_console_script_exits_cleanly_with_a_checkpoint(console_runs):
    run, returncode, out, err = console_runs["term"]
    assert returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith("gantrain: SIGTERM received: stopped after step") and f"resume={run}" in last
    step = checkpoint.load(run / "checkpoints" / "last.pt")["step"]
    assert f"after step {step} " in last and 3 <= step < 1000000


def test_kill_9_at_a_random_moment_then_resume_matches_an_uninterrupted_run(console_runs, compose, reference, tmp_path):
    """SIGKILL cannot be caught: what survives is the last checkpoint, written atomically before it."""
    run, target = console_runs["kill"]
    killed_at = checkpoint.load(run / "checkpoints" / "last.pt")["step"]
    assert target <= killed_at < STEPS, "the kill came after the run ended"
    assert_resumes_exactly(compose, run, killed_at, reference, tmp_path)


# ------------------------------------------------------------------------------------ NaN / Inf
def poisoned_loss(monkeypatch, generator_at=(), discriminator_at=(), value=float("nan")):
    """Make the nonsaturating loss return ``value`` (times the true loss, so gradients flow) on the listed
    calls (1-based) of its generator / discriminator part: with k = 1, call n is step n's update."""
    calls = {"G": 0, "D": 0}
    base = gantrain.losses.nonsaturating()

    def discriminator(real, fake):
        calls["D"] += 1
        loss = base.discriminator(real, fake)
        return loss * value if calls["D"] in discriminator_at else loss

    def generator(fake, real=None):
        calls["G"] += 1
        loss = base.generator(fake, real)
        return loss * value if calls["G"] in generator_at else loss

    monkeypatch.setattr(gantrain.losses, "nonsaturating", lambda: GANLoss(discriminator, generator))


@pytest.mark.parametrize("bad_step, last_good", [(9, 6), (10, 9)])
def test_nan_stops_naming_step_term_and_last_good_checkpoint(bad_step, last_good, compose, tmp_path, monkeypatch):
    """Checkpoints every 3 steps, logs every 4: the NaN is found at the next of those, before any save."""
    poisoned_loss(monkeypatch, generator_at={bad_step})
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLoss) as stop:
        gantrain.cli.train(compose([*TINY, "trainer.steps=20"]), run)
    message = str(stop.value)
    assert f"non-finite loss at step {bad_step} (generator update): loss/G=nan" in message
    assert f"last good checkpoint is {run / 'checkpoints' / 'last.pt'} (step {last_good})" in message
    assert "trainer.nan_policy=skip" in message and "\n" not in message
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert state["step"] == last_good
    assert all(torch.isfinite(v).all() for v in state["networks"].values() if v.is_floating_point())


def test_nan_skip_policy_skips_exactly_those_updates_and_counts_them(compose, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    poisoned_loss(monkeypatch, generator_at={5, 6}, discriminator_at={8}, value=float("inf"))
    snapshots, seen = [], {}
    original = Trainer.train_step

    def step_and_snapshot(self, measure=False):
        logs = original(self, measure)
        seen["trainer"] = self
        snapshots.append({k: v.detach().clone() for k, v in self.family.networks.named_parameters()})
        return logs

    monkeypatch.setattr(Trainer, "train_step", step_and_snapshot)
    run = tmp_path / "run"
    gantrain.cli.train(compose([*TINY, "trainer.steps=12", "trainer.nan_policy=skip"]), run)

    def same(a, b, prefix):
        return all(torch.equal(a[k], b[k]) for k in a if k.startswith(prefix))  # weights (BN statistics move)

    # snapshots[n - 1] is after step n: G's weights stand still through steps 5 and 6, D's through step 8
    assert same(snapshots[3], snapshots[5], "generator.") and not same(snapshots[5], snapshots[6], "generator.")
    assert same(snapshots[6], snapshots[7], "discriminator.") and not same(snapshots[3], snapshots[4], "discriminator.")
    optimizers = seen["trainer"].optimizers  # a skipped update does not advance Adam's step count either
    assert [int(s["step"]) for s in optimizers["generator"].state.values()][0] == 10
    assert [int(s["step"]) for s in optimizers["discriminator"].state.values()][0] == 11
    events = EventAccumulator(str(run)).Reload()
    counts = [(e.step, e.value) for e in events.Scalars("nonfinite/skipped_updates")]
    assert counts == [(1, 0.0), (4, 0.0), (8, 3.0), (12, 3.0)]
    assert checkpoint.load(run / "checkpoints" / "last.pt")["skipped_updates"] == 3


# ------------------------------------------------------------------------------------ safe loading
class _Payload:
    """Unpickling this object runs ``open(marker, "w")``: the marker file proves code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A file that looks like a gantrain checkpoint but carries a pickle payload."""
    buffer = io.BytesIO()
    torch.save(
        {"family": "mlp", "step": 1, "networks": {"w": torch.zeros(2)}, "optimizers": {}, "config": "", "hook": _Payload(marker)}, buffer
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


def test_a_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "marker"
    path = malicious_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(ConfigError, match=r"holds the Python object (builtins|io)\.open, not only tensors: refused unread"):
        checkpoint.load(path)
    assert not marker.exists()
    # the same file unpickled the unsafe way does run the payload: the test would catch a regression
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save({"step": 3, "w": torch.randn(1000)}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ConfigError, match="is truncated or not a checkpoint"):
        checkpoint.load(path)
