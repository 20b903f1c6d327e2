"""Planted bugs: sweeps and searches, what a new user sees, gantrain-explore."""

from .base import SWEEPS, Mutation

MUTATIONS = [
    # ------------------------------------------------------------------ sweeps, search and their records
    Mutation(
        name="hparams_without_the_group_choices",
        description="the HParams record leaves out the config groups a run did not override (Hydra's runtime choices)",
        file="gantrain/hparams.py",
        tests=[f"{SWEEPS}::test_every_run_records_its_hyperparameters_and_final_metrics_for_the_hparams_tab"],
        old='    if (record / "hydra.yaml").is_file():',
        new="    if False:",
    ),
    Mutation(
        name="launcher_workers_forget_the_swept_keys",
        description="a joblib or submitit worker names its job folder by its number only (swept keys from its own argv)",
        file="gantrain/run_dir.py",
        tests=[f"{SWEEPS}::test_submitit_local_runs_each_job_to_the_end_in_a_folder_named_by_its_swept_value"],
        old="    if saved.is_file():  # a joblib or submitit worker: its own argv is the launcher's",
        new="    if False:",
    ),
    Mutation(
        name="report_takes_the_first_value",
        description="gantrain-report's final value of a metric is its first logged value",
        file="gantrain/report.py",
        tests=[f"{SWEEPS}::test_report_tabulates_each_job_and_plots_each_metric_over_steps"],
        old="return self.curves[tag][-1][1] if tag in self.curves else None",
        new="return self.curves[tag][0][1] if tag in self.curves else None",
    ),
    Mutation(
        name="tune_never_prunes",
        description="gantrain-tune reports each evaluation but never asks the pruner",
        file="gantrain/tune.py",
        tests=[f"{SWEEPS}::test_tune_prunes_a_trial_at_the_evaluation_where_the_pruner_says_so"],
        old="if step < steps and trial.should_prune():",
        new="if False:",
    ),
    Mutation(
        name="tune_range_includes_its_stop",
        description="gantrain-tune's range(start, stop) can draw stop, which Hydra's range excludes",
        file="gantrain/tune.py",
        tests=[f"{SWEEPS}::test_tune_maps_hydra_sweeps_to_optuna_distributions"],
        old="        high = sweep.start + sweep.step * (count - 1)",
        new="        high = sweep.start + sweep.step * count",
    ),
    Mutation(
        name="objective_is_the_best_evaluation",
        description="train's objective is the best evaluation of the run, not its final one",
        file="gantrain/cli.py",
        tests=[f"{SWEEPS}::test_train_returns_the_final_evaluation_as_its_objective_and_shows_each_one"],
        old='        results["objective"] = results[best_metric]',
        new='        results["objective"] = trainer.best.value',
    ),
    # ------------------------------------------------------------------ what a new user sees
    Mutation(
        name="previews_at_their_native_size",
        description="preview samples drawn at their own size (a 16-px digit as 16 px) instead of upscaled to 64 px",
        file="gantrain/visualize.py",
        tests=["tests/test_first_hour.py::test_the_default_run_saves_digits_at_64_px_and_logs_real_data_beside_the_samples"],
        old="    scale = max(1, math.ceil(CELL / min(h, w)))",
        new="    scale = 1",
    ),
    Mutation(
        name="labels_not_drawn",
        description="a grid's labels get their band but no text",
        file="gantrain/visualize.py",
        tests=["tests/test_first_hour.py::test_labels_add_a_band_with_their_text_and_groups_stand_apart"],
        old="        draw.text((at.left[j] + (at.cell_width - width) // 2, PAD), text, fill=(INK,) * 3, font=_font())",
        new="        pass",
    ),
    Mutation(
        name="first_step_not_logged",
        description="a run shorter than log_every logs its last step only",
        file="gantrain/trainer.py",
        tests=[
            "tests/test_first_hour.py::test_a_run_shorter_than_log_every_shows_short_lines_on_the_console_and_every_key_in_the_log_file"
        ],
        old="        return step == 1 or step % self.settings.log_every == 0",
        new="        return step % self.settings.log_every == 0",
    ),
    Mutation(
        name="unlabelled_folder_evaluated_with_the_classifier",
        description="eval.features=auto picks the dataset classifier for a folder without class labels",
        file="gantrain/metrics/extractors.py",
        tests=[
            "tests/test_first_hour.py::test_auto_features_pick_the_classifier_for_labels_inception_when_its_weights_are_given_else_none"
        ],
        old='    if has_class_labels(bundle):\n        return "classifier"',
        new='    if True:\n        return "classifier"',
    ),
    # ------------------------------------------------------------------ gantrain-explore
    Mutation(
        name="slerp_weights_swapped",
        description="slerp weighs b by sin((1 − t)Ω) and a by sin(tΩ): the path runs from b to a",
        file="gantrain/explore/paths.py",
        tests=["tests/test_explore.py::test_slerp_endpoints_norm_and_angle"],
        old="spherical = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / safe",
        new="spherical = (torch.sin(t * omega) * a + torch.sin((1 - t) * omega) * b) / safe",
    ),
    Mutation(
        name="direction_not_unit",
        description="the attribute direction is the classifier's raw weight vector, not its unit normal",
        file="gantrain/explore/directions.py",
        tests=["tests/test_explore.py::test_fitted_normal_is_the_labelling_direction"],
        old="    return normal / normal.norm()",
        new="    return normal",
    ),
    Mutation(
        name="decouple_projects_the_wrong_way",
        description="decoupling removes n₂'s component along n₁ instead of n₁'s along n₂",
        file="gantrain/explore/directions.py",
        tests=["tests/test_explore.py::test_decoupled_direction_leaves_the_other_linear_attribute_unchanged"],
        old="    n = n1 - (n1 @ u2) * u2",
        new="    n = n1 - (n1 @ u2) * n1 / n1.norm()",
    ),
    Mutation(
        name="latent_map_transposed",
        description="the least-squares map is returned untransposed (Mᵀ in place of M)",
        file="gantrain/explore/maps.py",
        tests=["tests/test_explore.py::test_map_recovers_a_known_linear_map"],
        old="    return solution[:-1].T.to(source.dtype), solution[-1].to(source.dtype)",
        new="    return solution[:-1].to(source.dtype), solution[-1].to(source.dtype)",
    ),
    Mutation(
        name="projection_ascends",
        description="inversion steps up the reconstruction loss's gradient",
        file="gantrain/explore/project.py",
        tests=["tests/test_explore.py::test_project_recovers_a_tiny_generators_own_latent"],
        old="        latent.grad = grad",
        new="        latent.grad = -grad",
    ),
    Mutation(
        name="tau_truncation_clips",
        description="τ truncation clamps z to [−τ, τ] instead of redrawing the entries outside",
        file="gantrain/explore/spaces.py",
        tests=["tests/test_explore.py::test_tau_truncation_draws_a_truncated_normal"],
        old="            while (outside := z.abs() > tau).any():\n                z[outside] = torch.randn(int(outside.sum()), generator=generator)",
        new="            z = z.clamp(-tau, tau)",
    ),
]
