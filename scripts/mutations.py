"""Planted bugs for scripts/mutation_check.py: each replaces one exact snippet (it must occur once in ``file``)
and names the tests that must fail when it is planted (pytest node ids or files, the fewer the faster).

Add one for every new method: a wrong version a user could plausibly ship (a sign, a constant, a wrong
point of evaluation), not a typo, and the tests that pin the right one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str
    description: str
    file: str
    tests: list[str]
    old: str
    new: str


LOSSES, REG, REL = "tests/test_losses.py", "tests/test_regularizers.py", "tests/test_reliability.py"
METRICS, DATA = "tests/test_metrics.py", "tests/test_data.py"

MUTATIONS = [
    # ------------------------------------------------------------------ losses
    Mutation(name="hinge_margin_zero", description="hinge D loss without its margin: max(0, −D(x)) + max(0, D(G(z)))",
             file="gantrain/losses.py", tests=[f"{LOSSES}::test_hinge_is_the_sngan_form"],
             old="F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()",
             new="F.relu(-real).mean() + F.relu(fake).mean()"),
    Mutation(name="lsgan_real_target_ignored", description="LSGAN's D pulls real outputs to 1 whatever b is",
             file="gantrain/losses.py", tests=[f"{LOSSES}::test_lsgan_is_mao_eq2"],
             old="0.5 * (real - b).pow(2).mean()",
             new="0.5 * (real - 1.0).pow(2).mean()"),
    Mutation(name="nonsaturating_is_minimax", description="the non-saturating G loss −log D(G(z)) replaced by log(1 − D(G(z)))",
             file="gantrain/losses.py", tests=[f"{LOSSES}::test_minimax_and_nonsaturating_are_goodfellows_log_losses"],
             old="    return F.softplus(-fake).mean()",
             new="    return -F.softplus(fake).mean()"),
    Mutation(name="relativistic_roles_not_swapped", description="RaSGAN's G minimizes D's own loss instead of the swapped one",
             file="gantrain/losses.py", tests=[f"{LOSSES}::test_relativistic_average_compares_with_the_other_batchs_mean"],
             old="return relativistic_discriminator(fake, real)",
             new="return relativistic_discriminator(real, fake)"),
    Mutation(name="fgan_saddle_ignored", description="f-GAN's saddle=True G loss is the §3.2 update anyway",
             file="gantrain/losses.py", tests=[f"{LOSSES}::test_fgan_gan_is_the_original_gan"],
             old="-(div.conjugate(fake) if saddle else div.activation(fake)).mean()",
             new="-div.activation(fake).mean()"),
    # ------------------------------------------------------------------ regularizers
    Mutation(name="gp_at_real_points", description="WGAN-GP's penalty at the real samples instead of the interpolates",
             file="gantrain/regularizers.py", tests=[f"{REG}::test_gradient_penalty_interpolates_between_real_and_fake"],
             old="interpolates = eps * real.detach() + (1 - eps) * fake.detach()",
             new="interpolates = real.detach()"),
    Mutation(name="gp_squared_norm", description="WGAN-GP penalizes (‖∇D‖² − 1)² instead of (‖∇D‖ − 1)²",
             file="gantrain/regularizers.py", tests=[f"{REG}::test_gradient_penalty_matches_finite_differences"],
             old="excess = input_gradients(critic, interpolates).norm(dim=1) - 1.0",
             new="excess = input_gradients(critic, interpolates).pow(2).sum(dim=1) - 1.0"),
    Mutation(name="r1_gamma_not_halved", description="R1 weighs ‖∇D‖² by γ instead of γ/2",
             file="gantrain/regularizers.py", tests=[f"{REG}::test_r1_matches_finite_differences_and_is_lazy"],
             old="(0.5 * self.gamma * self.interval)",
             new="(self.gamma * self.interval)"),
    Mutation(name="r1_lazy_not_scaled", description="lazy R1 (interval k) forgets the factor k",
             file="gantrain/regularizers.py", tests=[f"{REG}::test_r1_matches_finite_differences_and_is_lazy"],
             old="(0.5 * self.gamma * self.interval)",
             new="(0.5 * self.gamma)"),
    Mutation(name="weight_clip_after_generator", description="WGAN's weight clipping after G's update, not D's",
             file="gantrain/regularizers.py", tests=[f"{REG}::test_weight_clip_clamps_the_discriminator_after_its_update_only"],
             old='        if role == "discriminator":\n            for d in networks_of(networks, role):',
             new='        if role == "generator":\n            for d in networks_of(networks, "discriminator"):'),
    Mutation(name="orthogonal_identity_target", description="orthogonal regularization ‖WᵀW − I‖² instead of BigGAN's off-diagonal form",
             file="gantrain/regularizers.py", tests=[f"{REG}::test_orthogonal_penalty_is_biggans_off_diagonal_gram"],
             old="(gram - torch.diag_embed(gram.diagonal())).pow(2).sum()",
             new="(gram - torch.eye(len(gram))).pow(2).sum()"),
    # ------------------------------------------------------------------ metrics
    Mutation(name="fid_trace_sign", description="FID adds 2 Tr (Σ₁Σ₂)^½ instead of subtracting it",
             file="gantrain/metrics/frechet.py", tests=[METRICS],
             old="np.trace(b.sigma) - 2.0 * trace_sqrt)",
             new="np.trace(b.sigma) + 2.0 * trace_sqrt)"),
    Mutation(name="fid_biased_covariance", description="FID statistics with the biased (1/N) covariance, unlike pytorch-fid",
             file="gantrain/metrics/frechet.py", tests=[METRICS],
             old="np.cov(x, rowvar=False))",
             new="np.cov(x, rowvar=False, bias=True))"),
    Mutation(name="kid_biased_mmd", description="KID's MMD² keeps the i = j terms (the biased estimator)",
             file="gantrain/metrics/scores.py", tests=[METRICS],
             old="within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))",
             new="within = (k_xx.sum() + k_yy.sum()) / (m * m)"),
    Mutation(name="knn_radius_off_by_one", description="k-NN radii use the (k−1)-th neighbour (precision/recall, density/coverage)",
             file="gantrain/metrics/manifold.py", tests=[METRICS],
             old=".values[:, k] for s",
             new=".values[:, k - 1] for s"),
    Mutation(name="density_not_divided_by_k", description="density divides the ball count by M instead of kM",
             file="gantrain/metrics/manifold.py", tests=[METRICS],
             old="counts.double().sum() / (k * len(fake))",
             new="counts.double().sum() / len(fake)"),
    Mutation(name="inception_score_global_marginal", description="IS takes p(y) over all samples instead of within each split",
             file="gantrain/metrics/scores.py", tests=["tests/test_metric_guards.py"],
             old="log_py = torch.logsumexp(part, dim=0) - math.log(len(part))",
             new="log_py = torch.logsumexp(log_p, dim=0) - math.log(len(log_p))"),
    Mutation(name="modes_counted_without_quality", description="mode coverage counts a mode captured by low-quality points too",
             file="gantrain/metrics/modes.py", tests=["tests/test_mode_metrics.py"],
             old="counts = torch.bincount(nearest[hq], minlength=len(means))",
             new="counts = torch.bincount(nearest, minlength=len(means))"),
    # ------------------------------------------------------------------ data
    Mutation(name="uint8_scaled_to_unit_interval", description="in-memory uint8 images (MNIST, CIFAR-10) scaled to [0, 1], not [-1, 1]",
             file="gantrain/data/__init__.py", tests=[f"{DATA}::test_uint8_images_are_scaled_by_127_5_to_minus_one_one"],
             old="x.float().div_(127.5).sub_(1.0) if x.dtype == torch.uint8",
             new="x.float().div_(255.0) if x.dtype == torch.uint8"),
    Mutation(name="folder_images_not_normalized", description="image-folder pixels left in [0, 1] (no Normalize(0.5, 0.5))",
             file="gantrain/data/folder.py", tests=[f"{DATA}::test_image_folder_pixels_are_scaled_to_minus_one_one"],
             old="transforms.Normalize([0.5] * channels, [0.5] * channels),",
             new="transforms.Normalize([0.0] * channels, [1.0] * channels),"),
    Mutation(name="digits_heldout_overlaps_train", description="the digits held-out split drawn from the training images",
             file="gantrain/data/digits.py", tests=[f"{DATA}::test_digits_shape_range_and_disjoint_stratified_split"],
             old='heldout=InMemory({"image": images[test_idx], "label": labels[test_idx]})',
             new='heldout=InMemory({"image": images[train_idx[: len(test_idx)]], "label": labels[train_idx[: len(test_idx)]]})'),
    Mutation(name="digits_split_not_stratified", description="the digits split ignores the class balance",
             file="gantrain/data/digits.py", tests=[f"{DATA}::test_digits_shape_range_and_disjoint_stratified_split"],
             old="test_size=holdout, stratify=y, random_state=seed",
             new="test_size=holdout, random_state=seed"),
    Mutation(name="folder_heldout_overlaps_train", description="an image folder's held-out files are also trained on",
             file="gantrain/data/folder.py", tests=[f"{DATA}::test_image_folder_with_and_without_class_labels"],
             old="heldout=Subset(dataset, order[:n_held])",
             new="heldout=Subset(dataset, order[-n_held:])"),
    Mutation(name="epochs_share_one_order", description="the batch stream shuffles every epoch the same way",
             file="gantrain/data/__init__.py", tests=[f"{DATA}::test_batch_stream_reshuffles_every_epoch_from_its_seed"],
             old="manual_seed(self.seed + self.epoch)",
             new="manual_seed(self.seed)"),
    # ------------------------------------------------------------------ checkpoints
    Mutation(name="checkpoint_save_not_atomic", description="checkpoint.save writes straight over the old file",
             file="gantrain/checkpoint.py", tests=[f"{REL}::test_checkpoint_killed_mid_write_leaves_the_old_one"],
             old='tmp = path.with_name(path.name + ".tmp")',
             new="tmp = path"),
    Mutation(name="checkpoint_loads_pickles", description="checkpoint.load unpickles arbitrary objects (weights_only=False)",
             file="gantrain/checkpoint.py", tests=[f"{REL}::test_a_pickle_payload_is_refused_and_never_runs"],
             old="state = torch.load(path, map_location=map_location, weights_only=True)",
             new="state = torch.load(path, map_location=map_location, weights_only=False)"),
    Mutation(name="rng_restore_skips_numpy", description="set_rng_state leaves NumPy's global generator where it was",
             file="gantrain/checkpoint.py", tests=[f"{DATA}::test_rng_state_round_trips_python_numpy_and_torch"],
             old='    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, gauss))\n',
             new=""),
    Mutation(name="resume_ignores_weight_shapes", description="a checkpoint of other layer sizes passes the compatibility check",
             file="gantrain/checkpoint.py",
             tests=["tests/test_bad_input.py::test_bad_input_is_one_line_before_any_work[resume_checkpoint_of_other_networks]"],
             old="reshaped = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]",
             new="reshaped = []"),
]
