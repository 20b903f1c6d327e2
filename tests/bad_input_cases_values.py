"""Bad-input cases of values checked on the config alone (gantrain/validate.py, cli.check_config): numbers that
are not numbers, seeds out of numpy's range, devices this machine lacks, list lengths, sizes, required values,
keys nothing reads, image sizes that would fill memory or that a model cannot make, folders that cannot be written."""

from __future__ import annotations

from pathlib import Path

import pytest

from bad_input_kit import CUDA, POINTS, fixed, resumed

SEED = r"is a seed: use an integer from 0 to 4294967295"


def cache_under_a_file(tmp: Path, run: Path) -> list[str]:
    (tmp / "afile").write_text("not a folder\n")
    return [*POINTS, "trainer.eval_every=1", f"eval.cache_dir={tmp / 'afile' / 'cache'}"]


CASES = {
    # seeds reach numpy and torch
    "seed_negative": (fixed(*POINTS, "seed=-1"), rf"^seed=-1 {SEED}$"),
    "seed_above_2_to_the_32": (fixed(*POINTS, "seed=4294967296"), rf"^seed=4294967296 {SEED}"),
    "seed_fractional": (fixed(*POINTS, "seed=1.5"), rf"^seed=1.5 {SEED}"),
    "seed_a_word": (fixed(*POINTS, "seed=abc"), rf"^seed='abc' {SEED}"),
    "eval_seed_negative": (fixed(*POINTS, "eval.seed=-3"), rf"^eval.seed=-3 {SEED}"),
    "data_seed_negative": (fixed(*POINTS, "dataset.source.seed=-1"), rf"^dataset.source.seed=-1 {SEED}"),
    # numbers given as words
    "lr_not_a_number": (fixed(*POINTS, "optimizer.lr=1e-3x"), r"^optimizer.lr='1e-3x' must be a number \(the default is 0.0002\)"),
    "lr_of_generator_a_word": (fixed(*POINTS, "optimizer.lr_g=abc"), r"^optimizer.lr_g=abc must be a positive learning rate"),
    "per_phase_lr_a_word": (
        fixed(*POINTS, "optimizer.per_phase={discriminator:{lr:fast}}"),
        r"^optimizer.per_phase.discriminator.lr=fast must be a positive learning rate",
    ),
    "r1_gamma_a_word": (fixed(*POINTS, "regularizer=r1", "regularizer.r1.gamma=abc"), r"^regularizer.r1.gamma='abc' must be a number"),
    "penalty_weight_a_flag": (
        fixed(*POINTS, "regularizer=gradient_penalty", "regularizer.gradient_penalty.weight=true"),
        r"^regularizer.gradient_penalty.weight=True must be a number",
    ),
    "holdout_a_word": (fixed("dataset.source.holdout=lots"), r"^dataset.source.holdout='lots' must be a number"),
    "latent_dim_a_word": (fixed(*POINTS, "model.latent_dim=abc"), r"^model.latent_dim='abc' must be a number"),
    "eval_num_samples_a_word": (fixed(*POINTS, "eval.num_samples=many"), r"^eval.num_samples='many' must be a number"),
    "ema_a_word": (fixed(*POINTS, "trainer.ema=abc"), r"^trainer.ema='abc' must be a number \(the default is 0.0\)"),
    "lr_decay_start_a_word": (fixed(*POINTS, "trainer.lr_decay_start=half"), r"^trainer.lr_decay_start='half' must be a number"),
    "amp_not_a_flag": (fixed(*POINTS, "trainer.amp=maybe"), r"^trainer.amp='maybe' must be true or false"),
    # devices
    "device_gpu": (fixed(*POINTS, "trainer.device=gpu"), r"^trainer.device='gpu' is not a device: use auto, cpu, cuda, cuda:N"),
    "device_mps_without_one": (fixed(*POINTS, "trainer.device=mps"), r"^trainer.device=mps but no Apple GPU \(MPS\) is available"),
    "device_cuda_3_without_gpu": pytest.param(
        fixed(*POINTS, "trainer.device=cuda:3"), r"^trainer.device=cuda:3 but no CUDA GPU is visible", marks=CUDA
    ),
    # lengths and sizes
    "betas_one_value": (
        fixed(*POINTS, "optimizer.betas=[0.5]"),
        r"^optimizer.betas=\[0.5\] needs 2 values, e.g. optimizer.betas=\[0.5, 0.999\]",
    ),
    "betas_three_values": (fixed(*POINTS, "optimizer.betas=[0.5,0.9,0.99]"), r"^optimizer.betas=\[0.5, 0.9, 0.99\] needs 2 values"),
    "latent_dim_zero": (fixed(*POINTS, "model.latent_dim=0"), r"^model.latent_dim=0 must be a positive integer \(the default is 64\)"),
    "generator_width_zero": (
        fixed("model.generator.width=0"),
        r"^model.generator.width=0 must be a positive integer \(the default is 64\)",
    ),
    "hidden_layer_of_zero_units": (
        fixed(*POINTS, "model.generator.hidden=[0]"),
        r"^model.generator.hidden=\[0\] must hold positive integers",
    ),
    "points_negative": (fixed(*POINTS, "dataset.source.n=-5"), r"^dataset.source.n=-5 must be a positive integer"),
    "maxout_pieces_zero": (fixed(*POINTS, "model.discriminator.pieces=0"), r"^model.discriminator.pieces=0 must be a positive integer"),
    "denoiser_width_zero": (fixed("model=ddpm", "model.denoiser.width=0"), r"^model.denoiser.width=0 must be a positive integer"),
    # required values
    "image_folder_without_root": (fixed("dataset=image_folder"), r"^dataset.root is required: pass dataset.root=PATH$"),
    # image sizes: refused before the data is resized or a model is made
    "digits_at_1000": (
        fixed("dataset.image_size=1000"),
        r"^dataset.image_size=1000: dataset=digits is held in memory .* largest useful size is 128",
    ),
    "digits_at_1024_for_dcgan": (
        fixed("dataset.image_size=1024"),
        r"^dataset.image_size=1024: .*use dataset=image_folder for larger images",
    ),
    "vae_at_12": (fixed("model=vae", "dataset.image_size=12"), r"\(model.vae\): the VAE makes 2\^k×2\^k images with k ≥ 3; image_size=12"),
    # keys nothing reads
    "group_typo_with_plus": (
        fixed(*POINTS, "+modle=vae"),
        r"^\+modle: modle is not a setting gantrain reads; did you mean model\? .*model=vae",
    ),
    "unknown_top_level_key": (fixed(*POINTS, "+foo=1"), r"^\+foo: foo is not a setting gantrain reads$"),
    "unknown_source_argument": (
        fixed(*POINTS, "+dataset.source.stdd=1"),
        r"dataset.source.stdd is not a setting .*did you mean dataset.source.std\?",
    ),
    "unknown_network_argument": (
        fixed(*POINTS, "+model.generator.foo=1"),
        r"^\+model.generator.foo: model.generator.foo is not a setting gantrain reads",
    ),
    "unknown_eval_key": (fixed(*POINTS, "+eval.seeds=1"), r"eval.seeds is not a setting gantrain reads; did you mean eval.seed\?"),
    "unknown_trainer_key": (fixed(*POINTS, "+trainer.foo=1"), r"^trainer.foo is not a trainer setting; known: accumulate"),
    # ++key=value: +key for a key nothing has, key=value for one that exists
    "force_add_unknown_top_level_key": (fixed(*POINTS, "++foo=1"), r"^\+\+foo: foo is not a setting gantrain reads$"),
    "force_add_unknown_source_argument": (
        fixed(*POINTS, "++dataset.source.stdd=1"),
        r"^\+\+dataset.source.stdd: .* is not a setting gantrain reads; did you mean dataset.source.std\?",
    ),
    "force_add_a_word_for_a_known_number": (
        fixed(*POINTS, "++optimizer.lr=fast"),
        r"^optimizer.lr='fast' must be a number \(the default is 0.0002\)$",
    ),
    "force_add_zero_for_a_known_size": (fixed(*POINTS, "++model.latent_dim=0"), r"^model.latent_dim=0 must be a positive integer"),
    # a resumed run's values are checked against its saved ones, as a new run's are against the defaults
    "resume_lr_a_word": (
        resumed(extra=["optimizer.lr=abc", "override_resume=true"]),
        r"^optimizer.lr='abc' must be a number \(the default is 0.0002\)$",
    ),
    "resume_lr_a_word_named_before_would_change": (resumed(extra=["optimizer.lr=1e-3x"]), r"^optimizer.lr='1e-3x' must be a number"),
    "resume_seed_negative": (resumed(extra=["seed=-1", "override_resume=true"]), rf"^seed=-1 {SEED}$"),
    "resume_betas_one_value": (
        resumed(extra=["optimizer.betas=[0.5]", "override_resume=true"]),
        r"^optimizer.betas=\[0.5\] needs 2 values",
    ),
    "resume_steps_a_word": (resumed(extra=["trainer.steps=many"]), r"^trainer.steps='many' must be a positive integer"),
    "resume_force_adds_an_unknown_key": (resumed(extra=["++foo=1"]), r"^foo is not a setting of the run being resumed$"),
    # found by tests/test_fuzz_overrides.py
    "batch_of_one_with_batch_norm": (
        fixed("model.generator.width=8", "model.discriminator.width=8", "trainer.batch_size=1"),
        r"^trainer.batch_size=1: dcgan's batch norm needs at least 2 samples per batch; use trainer.batch_size=2 or more$",
    ),
    "interpolation_to_no_key": (fixed(*POINTS, "trainer.log_every=${oops}"), r"^trainer.log_every: .*oops.*give it a value or a"),
    "fraction_for_a_group_size": (
        fixed(*POINTS, "model.discriminator.minibatch_stddev=0.5"),
        r"\(model.discriminator\): minibatch_stddev=0.5 is a group size: use a positive integer",
    ),
    "mapping_for_a_number": (
        fixed(*POINTS, "dataset.source.std={}"),
        r"^dataset.source.std=\{\} must be a number \(the default is 0.05\)$",
    ),
    "nested_mapping_for_a_number": (
        fixed(*POINTS, "dataset.source.std={a:1}"),
        r"^dataset.source.std must be a number \(the default is 0.05\), not a mapping$",
    ),
    # folders that would be written
    "cache_dir_under_a_file": (cache_under_a_file, r"^eval.cache_dir='.*afile/cache' cannot be a folder: '.*afile' is a file"),
}
