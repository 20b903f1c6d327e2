"""Data-parallel training under torchrun, on 2 CPU processes with gloo (gantrain/loop/distributed.py): 2 processes
with the global batch split between them train exactly as 1 process with the whole batch, write one run folder,
resume exactly and stop together on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gantrain import checkpoint

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
QUIET = ["trainer.sample_every=1000", "trainer.checkpoint_every=1000", "trainer.num_samples=16"]
# no batch norm: without SyncBatchNorm (CUDA only) each rank normalizes by its own half batch, by design
MLP = [
    "model=mlp",
    "dataset=grid25",
    "model.generator.batch_norm=false",
    "model.generator.hidden=[32,32]",
    "model.discriminator.hidden=[32,32]",
]
MLP += ["trainer.batch_size=16", "trainer.log_every=2", "trainer.d_steps=2", "trainer.eval_every=3", "eval.num_samples=200", *QUIET]
DCGAN = ["model=dcgan", "dataset=digits", "model.generator.norm=none", "model.discriminator.norm=none", "model.generator.width=8"]
DCGAN += [
    "model.discriminator.width=8",
    "model.latent_dim=16",
    "trainer.batch_size=8",
    "trainer.log_every=3",
    "trainer.steps=3",
    "trainer.eval_every=0",
    *QUIET,
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args, nproc: int = 2) -> list[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={_free_port()}"]
    return [*launcher, "-m", "gantrain", *args] if nproc > 1 else [sys.executable, "-m", "gantrain", *args]


def run(*args, cwd: Path, nproc: int = 2) -> subprocess.CompletedProcess:
    done = subprocess.run(torchrun(*args, nproc=nproc), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(run_dir / "checkpoints" / "last.pt")["networks"]


def assert_close(a: dict, b: dict, atol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())
    assert worst <= atol, f"parameters differ by up to {worst}"


@pytest.fixture(scope="module")
def mlp_runs(tmp_path_factory):
    """The same 6-step MLP run (k = 2 D steps) on 1 process and, in its default run folder, on 2 processes."""
    base = tmp_path_factory.mktemp("ddp")
    run(*MLP, "trainer.steps=6", f"hydra.run.dir={base / 'one'}", cwd=base, nproc=1)
    run(*MLP, "trainer.steps=6", cwd=base)
    return base


def test_two_processes_train_as_one_with_the_same_global_batch_mlp(mlp_runs):
    (two,) = (mlp_runs / "outputs").glob("*/*")
    one = weights(mlp_runs / "one")
    assert_close(one, weights(two))
    start = checkpoint.load(mlp_runs / "one" / "checkpoints" / "last.pt")["data"]
    assert start == checkpoint.load(two / "checkpoints" / "last.pt")["data"] == {"epoch": 0, "consumed": 18}  # global batches


def _logged(run_dir: Path) -> dict[str, float]:
    """The terms each log line of rank 0 gives (``step N: key=value, ...``), by ``N/key``, without speeds."""
    out = {}
    for line in (run_dir / "gantrain.log").read_text().splitlines():
        found = re.search(r"\] - step (\d+): (.*=.*)$", line)
        if found:
            step, terms = found.groups()
            for term in terms.split(", "):
                key, value = term.split("=")
                if not key.startswith("speed/"):
                    out[f"{step}/{key}"] = float(value)
    return out


def test_the_logged_terms_are_the_means_over_the_global_batch(mlp_runs):
    """Rank 0 logs each term averaged over the ranks: the numbers of one process with the whole batch."""
    (two,) = (mlp_runs / "outputs").glob("*/*")
    one, both = _logged(mlp_runs / "one"), _logged(two)
    assert "6/loss/D" in one and "6/modes/captured" in one and one.keys() == both.keys()
    assert all(both[k] == pytest.approx(one[k], rel=2e-3, abs=1e-6) for k in one), {k: (one[k], both[k]) for k in one if one[k] != both[k]}


def test_a_two_process_run_writes_one_run_dir_with_one_event_file(mlp_runs):
    runs = [p for p in (mlp_runs / "outputs").glob("*/*")]
    assert len(runs) == 1, runs
    files = sorted(str(p.relative_to(runs[0])) for p in runs[0].rglob("*") if p.is_file())
    assert [f for f in files if "tfevents" in f] == [next(f for f in files if "tfevents" in f)]
    assert sorted(f for f in files if "tfevents" not in f) == [
        ".hydra/config.yaml",
        ".hydra/hydra.yaml",
        ".hydra/overrides.yaml",
        "checkpoints/best.pt",
        "checkpoints/last.pt",
        "gantrain.log",
        "samples/step_0000006.png",
    ]
    assert len(checkpoint.load(runs[0] / "checkpoints" / "last.pt")["rng_ranks"]) == 2
    assert (runs[0] / "gantrain.log").read_text().count(": modes/captured=") == 2  # rank 0 evaluated at steps 3 and 6


def test_resume_of_a_two_process_run_equals_an_uninterrupted_one(mlp_runs, tmp_path):
    (full,) = (mlp_runs / "outputs").glob("*/*")
    part = tmp_path / "part"
    run(*MLP, "trainer.steps=3", f"hydra.run.dir={part}", cwd=tmp_path)
    run(f"resume={part}", "trainer.steps=6", "override_resume=true", cwd=tmp_path)
    a, b = weights(full), weights(part)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_processes_train_as_one_with_the_same_global_batch_dcgan(tmp_path):
    run(*DCGAN, f"hydra.run.dir={tmp_path / 'one'}", cwd=tmp_path, nproc=1)
    run(*DCGAN, f"hydra.run.dir={tmp_path / 'two'}", cwd=tmp_path)
    assert_close(weights(tmp_path / "one"), weights(tmp_path / "two"))


def test_sigterm_to_the_group_stops_both_ranks_with_one_checkpoint(tmp_path):
    """SIGTERM to every process of the group (as a cluster's preemption sends it; torchrun forwards it once more
    to each worker) stops both ranks after the same step, with one checkpoint of that step."""
    run_dir = tmp_path / "run"
    args = [*MLP, "trainer.steps=100000", "trainer.log_every=1", f"hydra.run.dir={run_dir}"]
    with open(tmp_path / "stderr.txt", "w") as err:  # a file, not a pipe that nobody reads while the run writes
        group = subprocess.Popen(torchrun(*args), cwd=tmp_path, env=ENV, stderr=err, start_new_session=True)
    log = run_dir / "gantrain.log"
    deadline = time.monotonic() + 180
    while not (log.is_file() and "step 3:" in log.read_text()):
        assert group.poll() is None and time.monotonic() < deadline, "the run did not start training"
        time.sleep(0.2)
    os.killpg(group.pid, signal.SIGTERM)
    group.wait(timeout=120)
    stderr = (tmp_path / "stderr.txt").read_text()
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):  # no worker outlived the launcher
        os.killpg(group.pid, 0)
    stopped = [line for line in stderr.splitlines() if "SIGTERM received: stopped after step" in line]
    assert len(stopped) == 1, stderr[-3000:]  # rank 0 reports
    state = checkpoint.load(run_dir / "checkpoints" / "last.pt")
    assert f"after step {state['step']} " in stopped[0] and state["step"] >= 3
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.pt", "last.pt"]  # best: its evaluations
    assert len(list(run_dir.glob("*tfevents*"))) == 1


@pytest.mark.slow
def test_a_rank_that_dies_stops_the_others_with_one_line_and_the_checkpoint_stays_valid(tmp_path):
    run_dir = tmp_path / "run"
    args = [*MLP, "trainer.steps=100000", "trainer.log_every=5", "trainer.checkpoint_every=5", f"hydra.run.dir={run_dir}"]
    group = subprocess.Popen(torchrun(*args), cwd=tmp_path, env=ENV, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 180
    while not (run_dir / "checkpoints" / "last.pt").is_file():
        assert group.poll() is None and time.monotonic() < deadline, "the run did not start training"
        time.sleep(0.2)
    workers = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == group.pid]
    assert len(workers) == 2
    os.kill(max(workers), signal.SIGKILL)  # one of the two ranks
    _, stderr = group.communicate(timeout=120)
    assert group.returncode != 0
    lost = [line for line in stderr.splitlines() if re.match(r"gantrain: error: rank [01] of 2 lost contact with the others", line)]
    assert len(lost) == 1 and f"resume={run_dir}" in lost[0], stderr[-3000:]
    assert checkpoint.load(run_dir / "checkpoints" / "last.pt")["step"] % 5 == 0


def _parent(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


@pytest.mark.parametrize(
    "fields, device, refused",
    [
        ({"batch_size": 15}, "cpu", "trainer.batch_size=15 is the global batch and must split evenly over the 2 processes"),
        ({"batch_size": 16, "sync_batchnorm": True}, "cpu", "trainer.sync_batchnorm=true needs CUDA GPUs"),
    ],
)
def test_settings_a_two_process_run_cannot_use_are_refused_in_one_line(monkeypatch, fields, device, refused):
    from gantrain.errors import ConfigError
    from gantrain.loop import distributed
    from gantrain.settings import TrainerSettings

    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(ConfigError, match=refused):
        distributed.checked_device(TrainerSettings(**fields), torch.device(device))
    assert distributed.checked_device(TrainerSettings(batch_size=16), torch.device("cpu")) == torch.device("cpu")


@pytest.mark.slow
def test_a_refused_setting_is_reported_once_by_rank_0(tmp_path):
    done = subprocess.run(
        torchrun(*MLP, "trainer.batch_size=15", "trainer.steps=2"), cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=240
    )
    assert done.returncode != 0
    assert [line for line in done.stderr.splitlines() if line.startswith("gantrain: error:")] == [
        "gantrain: error: trainer.batch_size=15 is the global batch and must split evenly over the 2 processes: use a multiple of 2"
    ]
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("checkpoints"))


def test_a_non_finite_loss_or_a_signal_on_another_rank_stops_this_one(monkeypatch, tmp_path):
    """The NaN guard and the stop signals ask every rank (``distributed.agree``): another rank's NaN stops or skips
    here too, another rank's SIGTERM stops here after the same step."""
    from gantrain.loop import distributed
    from gantrain.loop.guards import NanGuard, NonFiniteLoss, StopSignals

    others = {"min": 0, "max": signal.SIGTERM}  # what the other rank contributes
    monkeypatch.setattr(
        distributed, "agree", lambda value, op="max": min(value, others["min"]) if op == "min" else max(value, others["max"])
    )
    finite = torch.tensor(1.0)
    stop = NanGuard("stop", tmp_path)
    stop.admit(7, "discriminator", finite, {"loss/D": finite})
    with pytest.raises(NonFiniteLoss, match="non-finite loss at step 7 \\(discriminator update\\): on another rank"):
        stop.check(None)
    skip = NanGuard("skip", tmp_path)
    assert not skip.admit(8, "generator", finite, {"loss/G": finite}) and skip.skipped == 1
    signals = StopSignals()
    assert signals.received is None and signals.agreed() == signal.SIGTERM == signals.received


def test_a_signal_that_arrives_during_the_all_reduce_stops_the_next_step(monkeypatch):
    """A rank spends much of a step inside all-reduces, and a Python signal handler runs when one returns: a signal
    handled during the vote of one step must stop the run at the next, not be erased by that step's "go on"."""
    from gantrain.loop import distributed
    from gantrain.loop.guards import StopSignals

    signals = StopSignals()

    def vote_while_the_handler_runs(value, op="max"):
        signals.received = signal.SIGTERM  # what request_stop does when the signal lands now
        return value  # this step's vote was taken before: go on

    monkeypatch.setattr(distributed, "agree", vote_while_the_handler_runs)
    assert signals.agreed() is None and signals.received == signal.SIGTERM
    monkeypatch.setattr(distributed, "agree", lambda value, op="max": value)
    assert signals.agreed() == signal.SIGTERM
