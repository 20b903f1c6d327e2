"""Sweeps on Hydra's launchers (joblib, submitit_local: real worker processes), TensorBoard's HParams record of a
run, gantrain-report's table and curves of a sweep, and gantrain-tune's Optuna search with pruning."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

from gantrain import report, tune

ROOT = Path(__file__).resolve().parents[1]
# 6 steps of the 2D MLP GAN, evaluated at steps 3 and 6 on 100 samples
TINY = [
    "model=mlp",
    "dataset=grid25",
    "dataset.source.n=500",
    "trainer.steps=6",
    "trainer.batch_size=8",
    "trainer.log_every=3",
    "trainer.sample_every=100",
    "trainer.eval_every=3",
    "eval.num_samples=100",
]


def gantrain_multirun(*args, cwd: Path) -> Path:
    """``python -m gantrain.cli -m <args>`` as a user runs it; the sweep folder it wrote."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "gantrain.cli", "-m", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (cwd / "outputs" / "multirun").glob("*/*")
    return sweep


def final_logged(job: Path, metric: str) -> float:
    """The value the job's log file printed for ``metric`` at its last evaluation (4 significant digits)."""
    return float(re.findall(rf"{re.escape(metric)}=([-0-9.e]+)", (job / "gantrain.log").read_text())[-1])


@pytest.fixture(scope="module")
def submitit_sweep(tmp_path_factory) -> Path:
    """Two jobs run by Hydra's submitit launcher in local mode: each in its own process, as on a cluster node."""
    cwd = tmp_path_factory.mktemp("submitit")
    return gantrain_multirun(
        "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=4", "loss=minimax,hinge", "optimizer.lr=1e-4", *TINY, cwd=cwd
    )


def test_submitit_local_runs_each_job_to_the_end_in_a_folder_named_by_its_swept_value(submitit_sweep):
    jobs = sorted(p.name for p in submitit_sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == ["0_minimax", "1_hinge"]  # the launcher's workers name them as the local sweep does
    for job in jobs:
        assert (submitit_sweep / job / "checkpoints" / "last.pt").is_file()
        assert "step 6: modes/captured" in (submitit_sweep / job / "gantrain.log").read_text()
    assert list((submitit_sweep / ".submitit").iterdir())  # submitit's own job records: it did launch them


def test_joblib_launcher_runs_the_jobs_in_two_worker_processes(tmp_path):
    sweep = gantrain_multirun("hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2", *TINY, cwd=tmp_path)
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0_1", "1_2"]
    # an event file is named ...<host>.<pid>.<n>: the jobs ran in two processes, neither of them this one
    pids = {next((sweep / job).glob("events.out.tfevents.*")).name.split(".")[-2] for job in ("0_1", "1_2")}
    assert len(pids) == 2
    assert all((sweep / job / "checkpoints" / "last.pt").is_file() for job in ("0_1", "1_2"))


def hparams_records(run: Path) -> dict:
    events = EventAccumulator(str(run))
    events.Reload()
    return {
        tag: plugin_data_pb2.HParamsPluginData.FromString(content) for tag, content in events.PluginTagToContent("hparams").items()
    }, events


def test_every_run_records_its_hyperparameters_and_final_metrics_for_the_hparams_tab(submitit_sweep):
    records, events = hparams_records(submitit_sweep / "1_hinge")
    start = records["_hparams_/session_start_info"].session_start_info.hparams
    values = {k: v.string_value or v.number_value for k, v in start.items()}
    assert values["loss"] == "hinge" and values["model"] == "mlp" and values["dataset"] == "grid25"
    assert values["optimizer"] == "adam" and values["regularizer"] == "none"  # group choices not on the command line
    assert values["optimizer.lr"] == 1e-4 and values["trainer.steps"] == 6  # overrides, as the numbers they resolve to
    metrics = [m.name.tag for m in records["_hparams_/experiment"].experiment.metric_infos]
    assert {"modes/reverse_kl", "modes/captured", "loss/D", "loss/G"} <= set(metrics)
    assert not any(m.startswith(("speed/", "lr/")) for m in metrics)
    # the HParams tab reads each metric from the run's own scalars: they are there, at the last step
    assert all(events.Scalars(m)[-1].step == 6 for m in metrics)
    assert records["_hparams_/session_end_info"].session_end_info.status == api_pb2.STATUS_SUCCESS


def test_report_tabulates_each_job_and_plots_each_metric_over_steps(submitit_sweep, tmp_path):
    report.main([str(submitit_sweep), "--out", str(tmp_path)])
    rows = list(csv.DictReader(open(tmp_path / "report.csv")))
    assert [r["job"] for r in rows] == ["0_minimax", "1_hinge"]
    assert [r["loss"] for r in rows] == ["minimax", "hinge"] and all(r["optimizer.lr"] == "0.0001" for r in rows)
    assert all(r["steps"] == "6" and r["status"] == "done" and float(r["seconds"]) > 0 for r in rows)
    for row in rows:  # the final evaluation, as the job's own log printed it
        for metric in ("modes/reverse_kl", "modes/hq_fraction", "loss/D", "loss/G"):
            assert float(row[metric]) == pytest.approx(final_logged(submitit_sweep / row["job"], metric), rel=1e-3, abs=1e-4)
    markdown = (tmp_path / "report.md").read_text()
    assert "`optimizer.lr=0.0001`" in markdown.split("|")[0]  # shared by every job: said once, above the table
    assert re.search(r"^\| 1_hinge \| hinge \| ", markdown, re.M)
    for name in ("modes_reverse_kl.png", "loss_D.png"):
        assert (tmp_path / name).stat().st_size > 1000 and f"]({name})" in markdown
    job = report.read_job(submitit_sweep / "0_minimax")
    assert [step for step, _ in job.curves["modes/reverse_kl"]] == [3, 6]  # one point per evaluation


def test_report_refuses_a_folder_without_jobs(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        report.main([str(tmp_path)])
    assert stop.value.code == 2 and "holds no job folders" in capsys.readouterr().err


def test_train_returns_the_final_evaluation_as_its_objective_and_shows_each_one(compose, tmp_path, monkeypatch):
    from gantrain import cli
    from gantrain.metrics.evaluator import Evaluator

    scripted, evaluate = iter([1.0, 2.0]), Evaluator.evaluate  # the best evaluation comes first, the final one is worse
    monkeypatch.setattr(Evaluator, "evaluate", lambda self, samples: {**evaluate(self, samples), "modes/reverse_kl": next(scripted)})
    seen = []
    results = cli.train(compose(TINY), tmp_path / "run", TINY, on_evaluate=lambda step, value: seen.append((step, value)))
    assert seen == [(3, 1.0), (6, 2.0)] and results["objective"] == 2.0


SPACE = ["optimizer.lr=tag(log,interval(1e-4,1e-2))", "loss=hinge,nonsaturating"]


def test_tune_minimizes_the_final_best_metric_of_each_trial_run(tmp_path):
    study = tune.tune(tune.parse_args(["--trials", "3", "--seed", "0", "--pruner", "none", "--dir", str(tmp_path), *TINY, *SPACE]))
    assert study.direction == optuna.study.StudyDirection.MINIMIZE  # eval.best_metric null: modes/reverse_kl
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    for trial in study.trials:
        run = Path(trial.user_attrs["run_dir"])
        assert run.parent == tmp_path and run.name.startswith(f"{trial.number}_")
        assert trial.value == pytest.approx(report.read_job(run).final("modes/reverse_kl"), rel=1e-6)  # the final evaluation
        overrides = (run / ".hydra" / "overrides.yaml").read_text()
        assert f"optimizer.lr={trial.params['optimizer.lr']}" in overrides and f"loss={trial.params['loss']}" in overrides
        assert sorted(trial.intermediate_values) == [3, 6]  # each evaluation reported
    assert study.best_value == min(t.value for t in study.trials)


def test_tune_prunes_a_trial_at_the_evaluation_where_the_pruner_says_so(tmp_path):
    fixed, space = tune.parse_space([*TINY, *SPACE])
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0))  # reverse KL > 0: prune at once
    study.optimize(tune.objective(fixed, space, tmp_path), n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED and list(trial.intermediate_values) == [3]
    job = report.read_job(Path(trial.user_attrs["run_dir"]))
    assert job.steps == 3 and job.status == "stopped"  # the run stopped at its first evaluation


def test_tune_maps_hydra_sweeps_to_optuna_distributions():
    _, space = tune.parse_space(
        ["a=range(1,5)", "b=range(0.1,0.5,0.1)", "c=tag(log,interval(1e-5,1e-3))", "d=x,y", "e=tag(int,interval(2,8))"]
    )
    trial = optuna.create_study().ask()
    values = {key: tune.suggest(trial, key, sweep) for key, sweep in space.items()}
    d = trial.distributions
    assert (d["a"].low, d["a"].high, d["a"].step) == (1, 4, 1) and isinstance(values["a"], int)  # Hydra's range excludes its stop
    assert (d["b"].low, d["b"].high) == pytest.approx((0.1, 0.4)) and d["b"].step == 0.1
    assert d["c"].log and (d["c"].low, d["c"].high) == (1e-5, 1e-3)
    assert d["d"].choices == ("x", "y")
    assert isinstance(d["e"], optuna.distributions.IntDistribution) and (d["e"].low, d["e"].high) == (2, 8)


@pytest.mark.parametrize(
    "args,message",
    [
        (["model=mlp", "dataset=grid25", "trainer.eval_every=3"], "no search space"),
        (["model=mlp", "dataset=grid25", "trainer.eval_every=0", "loss=hinge,minimax"], "set trainer.eval_every"),
        (["--trials", "0", "loss=hinge,minimax"], "run at least one trial"),
    ],
)
def test_tune_refuses_what_cannot_search_in_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        tune.main(["--dir", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())  # nothing trained
