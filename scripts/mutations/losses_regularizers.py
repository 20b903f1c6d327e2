"""Planted bugs: losses and regularizers."""

from .base import LOSSES, REG, Mutation

MUTATIONS = [
    # ------------------------------------------------------------------ losses
    Mutation(
        name="hinge_margin_zero",
        description="hinge D loss without its margin: max(0, −D(x)) + max(0, D(G(z)))",
        file="gantrain/losses.py",
        tests=[f"{LOSSES}::test_hinge_is_the_sngan_form"],
        old="F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()",
        new="F.relu(-real).mean() + F.relu(fake).mean()",
    ),
    Mutation(
        name="lsgan_real_target_ignored",
        description="LSGAN's D pulls real outputs to 1 whatever b is",
        file="gantrain/losses.py",
        tests=[f"{LOSSES}::test_lsgan_is_mao_eq2"],
        old="0.5 * (real - b).pow(2).mean()",
        new="0.5 * (real - 1.0).pow(2).mean()",
    ),
    Mutation(
        name="nonsaturating_is_minimax",
        description="the non-saturating G loss −log D(G(z)) replaced by log(1 − D(G(z)))",
        file="gantrain/losses.py",
        tests=[f"{LOSSES}::test_minimax_and_nonsaturating_are_goodfellows_log_losses"],
        old="    return F.softplus(-fake).mean()",
        new="    return -F.softplus(fake).mean()",
    ),
    Mutation(
        name="relativistic_roles_not_swapped",
        description="RaSGAN's G minimizes D's own loss instead of the swapped one",
        file="gantrain/losses.py",
        tests=[f"{LOSSES}::test_relativistic_average_compares_with_the_other_batchs_mean"],
        old="return relativistic_discriminator(fake, real)",
        new="return relativistic_discriminator(real, fake)",
    ),
    Mutation(
        name="fgan_saddle_ignored",
        description="f-GAN's saddle=True G loss is the §3.2 update anyway",
        file="gantrain/losses.py",
        tests=[f"{LOSSES}::test_fgan_gan_is_the_original_gan"],
        old="-(div.conjugate(fake) if saddle else div.activation(fake)).mean()",
        new="-div.activation(fake).mean()",
    ),
    # ------------------------------------------------------------------ regularizers
    Mutation(
        name="gp_at_real_points",
        description="WGAN-GP's penalty at the real samples instead of the interpolates",
        file="gantrain/regularizers.py",
        tests=[f"{REG}::test_gradient_penalty_interpolates_between_real_and_fake"],
        old="interpolates = eps * real.detach() + (1 - eps) * fake.detach()",
        new="interpolates = real.detach()",
    ),
    Mutation(
        name="gp_squared_norm",
        description="WGAN-GP penalizes (‖∇D‖² − 1)² instead of (‖∇D‖ − 1)²",
        file="gantrain/regularizers.py",
        tests=[f"{REG}::test_gradient_penalty_matches_finite_differences"],
        old="excess = input_gradients(critic, interpolates).norm(dim=1) - 1.0",
        new="excess = input_gradients(critic, interpolates).pow(2).sum(dim=1) - 1.0",
    ),
    Mutation(
        name="r1_gamma_not_halved",
        description="R1 weighs ‖∇D‖² by γ instead of γ/2",
        file="gantrain/regularizers.py",
        tests=[f"{REG}::test_r1_matches_finite_differences_and_is_lazy"],
        old="(0.5 * self.gamma * self.interval)",
        new="(self.gamma * self.interval)",
    ),
    Mutation(
        name="r1_lazy_not_scaled",
        description="lazy R1 (interval k) forgets the factor k",
        file="gantrain/regularizers.py",
        tests=[f"{REG}::test_r1_matches_finite_differences_and_is_lazy"],
        old="(0.5 * self.gamma * self.interval)",
        new="(0.5 * self.gamma)",
    ),
    Mutation(
        name="weight_clip_after_generator",
        description="WGAN's weight clipping after G's update, not D's",
        file="gantrain/regularizers.py",
        tests=[f"{REG}::test_weight_clip_clamps_the_discriminator_after_its_update_only"],
        old='        if role == "discriminator":\n            for d in networks_of(networks, role):',
        new='        if role == "generator":\n            for d in networks_of(networks, "discriminator"):',
    ),
    Mutation(
        name="orthogonal_identity_target",
        description="orthogonal regularization ‖WᵀW − I‖² instead of BigGAN's off-diagonal form",
        file="gantrain/regularizers.py",
        tests=[f"{REG}::test_orthogonal_penalty_is_biggans_off_diagonal_gram"],
        old="small.pow(2).sum() - filters.pow(2).sum(1).pow(2).sum()",
        new="small.pow(2).sum() - 2 * filters.pow(2).sum() + len(filters)",
    ),
]
