"""Evaluation while training (scalars, best checkpoint, memorization) and the gantrain-eval command."""

import json
import math

import pytest
import torch

import gantrain.cli
import gantrain.metrics.evaluator as evaluator_module
from gantrain import checkpoint
from gantrain.data import take
from gantrain.errors import ConfigError
from gantrain.evaluate import evaluate_checkpoint, main, parse_args
from gantrain.metrics import density_coverage, inception_score, kernel_inception_distance, precision_recall

from conftest import compose_config

RUN = [
    "trainer.steps=4",
    "trainer.batch_size=16",
    "trainer.log_every=2",
    "trainer.sample_every=100",
    "trainer.checkpoint_every=100",
    "trainer.num_samples=16",
    "trainer.eval_every=2",
    "eval.num_samples=60",
    "eval.kid_subsets=5",
    "eval.classifier.width=4",
    "eval.classifier.feature_dim=16",
    "eval.classifier.epochs=1",
    "eval.memorization.rows=3",
    "eval.memorization.neighbours=2",
    "eval.memorization.max_train=300",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The module's classifier and feature cache: the tiny classifier is trained once for all its tests."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory, cache):
    """One short run of the original GAN on digits with EMA, evaluated at steps 2 and 4."""
    root = tmp_path_factory.mktemp("eval")
    logs = gantrain.cli.train(compose_config(RUN + ["model=mlp", "trainer.ema=0.9", f"eval.cache_dir={cache}"]), root / "run")
    return root / "run", logs


def test_training_logs_every_metric_with_its_extractor(digits_run):
    run, logs = digits_run
    for name in ("FID", "IS", "KID", "precision", "recall", "density", "coverage", "class_KL", "accuracy", "memorization"):
        assert math.isfinite(logs[f"{name}/classifier"]), name
    assert logs["FID/classifier"] > 0 and 1 <= logs["IS/classifier"] <= 10
    assert (run / "samples" / "memorization.png").is_file() and (run / "samples" / "nn_distances.png").is_file()
    best = checkpoint.load(run / "checkpoints" / "best.pt")
    last = checkpoint.load(run / "checkpoints" / "last.pt")
    assert best["step"] in (2, 4) and best["metrics"]["FID/classifier"] == last["best"]
    assert last["best"] <= logs["FID/classifier"]


def test_gantrain_eval_scores_the_ema_generator_and_writes_metrics_json(digits_run, tmp_path):
    run, logs = digits_run
    record = evaluate_checkpoint(str(run), {"eval.num_samples": 60}, out=str(tmp_path / "m.json"))
    assert record["network"] == "generator (EMA)" and record["step"] == 4
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["metrics"] == record["metrics"]
    # the same checkpoint, samples and evaluator settings as the run's last evaluation: the same FID
    assert record["metrics"]["FID/classifier"] == pytest.approx(logs["FID/classifier"], rel=1e-6)
    assert (run / "eval" / "memorization.png").is_file()


def test_gantrain_eval_command_line(digits_run, tmp_path, capsys):
    run, _ = digits_run
    main([f"ckpt={run / 'checkpoints' / 'best.pt'}", f"out={tmp_path / 'best.json'}", "eval.num_samples=30"])
    out = capsys.readouterr().out
    assert "FID/classifier" in out and (tmp_path / "best.json").is_file()
    with pytest.raises(SystemExit) as exit_:
        main([f"ckpt={tmp_path}"])
    assert exit_.value.code == 2 and "checkpoints/last.pt" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="usage"):
        parse_args(["eval.num_samples=3"])
    with pytest.raises(ConfigError, match="not a setting"):
        evaluate_checkpoint(str(run), {"eval.no_such_key": 1})
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="not a gantrain training checkpoint"):
        evaluate_checkpoint(str(tmp_path / "other.pt"))


def test_the_best_checkpoint_follows_the_metric_direction(compose, tmp_path, monkeypatch):
    """A scripted evaluator: FID 3, 1, 2 at steps 1, 2, 3 → best.pt is step 2; precision (higher is better)
    0.2, 0.9, 0.5 → also step 2; NaN never wins."""

    class Scripted:
        images = True
        num_samples = 4

        def __init__(self, name, values):
            self.name, self.values = name, iter(values)
            self.extractor = type("E", (), {"name": "classifier"})()

        def metric_names(self, family=None):
            return [self.name]

        def sample(self, family, network):
            return torch.zeros(4)

        def evaluate(self, samples):
            return {self.name: next(self.values)}

        def memorization(self, *args):
            return {}

    quick = [
        "trainer.steps=4",
        "trainer.batch_size=16",
        "trainer.log_every=100",
        "trainer.sample_every=100",
        "trainer.checkpoint_every=100",
        "trainer.num_samples=16",
        "model=mlp",
        "trainer.eval_every=1",
    ]
    for name, values in (("FID/classifier", [3.0, 1.0, 2.0, float("nan")]), ("precision/classifier", [0.2, 0.9, 0.5, 0.1])):
        monkeypatch.setattr(evaluator_module, "build_evaluator", lambda cfg, bundle, device, v=values, n=name: Scripted(n, v))
        run = tmp_path / name.split("/")[0]
        gantrain.cli.train(compose(quick + [f"eval.best_metric={name}"]), run)
        best = checkpoint.load(run / "checkpoints" / "best.pt")
        assert best["step"] == 2 and best["metrics"][name] == values[1]


def test_evaluation_settings_are_checked(compose, tmp_path, cache):
    with pytest.raises(ConfigError, match="eval_every"):
        gantrain.cli.train(compose(["trainer.eval_every=-1"]), tmp_path / "a")
    with pytest.raises(ConfigError, match="eval.num_samples=5 must be an integer ≥ 6"):
        gantrain.cli.train(compose(RUN + ["model=mlp", "eval.num_samples=5", f"eval.cache_dir={cache}"]), tmp_path / "c")
    cfg = compose(RUN + ["model=mlp", "eval.best_metric=sharpness", f"eval.cache_dir={cache}"])
    with pytest.raises(ConfigError, match="best_metric='sharpness/classifier'"):
        gantrain.cli.train(cfg, tmp_path / "b")


def test_point_datasets_log_the_mode_metrics(compose, tmp_path):
    cfg = compose(RUN + ["model=mlp", "dataset=ring8", "dataset.source.n=2000", "trainer.num_samples=100"])
    logs = gantrain.cli.train(cfg, tmp_path / "ring")
    assert set(k for k in logs if k.startswith("modes/")) == {"modes/captured", "modes/hq_fraction", "modes/reverse_kl"}
    assert 0 <= logs["modes/captured"] <= 8 and 0 <= logs["modes/hq_fraction"] <= 1
    assert (tmp_path / "ring" / "checkpoints" / "last.pt").is_file()


def test_eval_num_samples_batch_size_and_seed_choose_the_generated_samples(compose):
    """eval.num_samples samples, generated eval.batch_size at a time from the fixed inputs eval.seed draws."""
    cfg = compose(["model=mlp", "dataset=ring8", "eval.num_samples=37", "eval.batch_size=16", "eval.seed=3"])
    bundle = gantrain.cli.build_data(cfg)
    family = gantrain.cli.build_family(cfg)
    family.networks.eval()
    samples = evaluator_module.build_evaluator(cfg, bundle).sample(family)
    with torch.no_grad():
        expected = family.generate(family.fixed_inputs(37, torch.Generator().manual_seed(3)))
    assert samples.shape == (37, 2)
    torch.testing.assert_close(samples, expected)
    other = evaluator_module.build_evaluator(compose(["model=mlp", "dataset=ring8", "eval.seed=4"]), bundle).sample(family)
    assert not torch.allclose(other[:37], samples)


# A classifier whose features and logits tell digits apart (two epochs at lr 0.01; RUN's single epoch at the
# default lr leaves them nearly constant: too flat to show what a setting changes).
SCORING = [
    "model=mlp",
    "eval.num_samples=60",
    "eval.classifier.width=4",
    "eval.classifier.feature_dim=16",
    "eval.classifier.epochs=2",
    "eval.classifier.lr=0.01",
]


@pytest.fixture(scope="module")
def scored(cache):
    """The digits, 60 training images scored as generated samples (every metric is then well defined) and
    their metrics with the default settings."""
    cfg = compose_config(SCORING + [f"eval.cache_dir={cache}"])
    bundle = gantrain.cli.build_data(cfg)
    fake = take(bundle.train, 60)["image"]
    return bundle, fake, evaluator_module.build_evaluator(cfg, bundle).evaluate(fake)


@pytest.mark.parametrize(
    "override,changes",
    [
        ("eval.precision_k=1", {"precision", "recall"}),
        ("eval.density_k=2", {"density", "coverage"}),
        ("eval.is_splits=3", {"IS"}),
        ("eval.kid_subsets=3", {"KID"}),
        ("eval.kid_subset_size=20", {"KID"}),
        ("eval.seed=1", {"KID"}),  # the KID subsets' draws
    ],
)
def test_each_eval_setting_changes_exactly_its_metrics(compose, cache, scored, override, changes):
    """Against the default settings, one eval.* setting changes exactly the metrics it parameterizes, to what
    their functions compute with its value."""
    bundle, fake, default = scored
    cfg = compose(SCORING + [f"eval.cache_dir={cache}", override])
    evaluator = evaluator_module.build_evaluator(cfg, bundle)
    metrics = evaluator.evaluate(fake)
    assert metrics.keys() == default.keys()
    assert {name.split("/")[0] for name in metrics if metrics[name] != default[name]} == changes
    e = cfg.eval
    real = evaluator.split_features("heldout")[0]
    features, logits = evaluator.extractor.extract(fake)
    expected = {
        "IS": inception_score(logits, e.is_splits)[0],
        "KID": kernel_inception_distance(real, features, e.kid_subsets, e.kid_subset_size, e.seed)[0],
    }
    expected["precision"], expected["recall"] = precision_recall(real, features, e.precision_k)
    expected["density"], expected["coverage"] = density_coverage(real, features, e.density_k)
    for name in changes:
        assert metrics[f"{name}/classifier"] == pytest.approx(expected[name], rel=1e-9), name
