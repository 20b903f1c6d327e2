"""Planted bugs: image-to-image translation: inpainting, CycleGAN, StarGAN, pix2pix, SPADE."""

from .base import Mutation

MUTATIONS = [
    # ------------------------------------------------------------------ context-encoder inpainting
    Mutation(
        name="inpainting_composite_replaces_the_context",
        description="the inpainted output takes the prediction outside the hole too, not the input's pixels",
        file="gantrain/families/inpainting.py",
        tests=["tests/test_inpainting.py::test_the_composite_is_the_input_outside_the_hole_exactly_and_the_prediction_inside"],
        old="        return torch.where(mask, prediction, image)",
        new="        return prediction",
    ),
    Mutation(
        name="inpainting_rim_weighted_as_the_hole",
        description="the context encoder's L2 weighs the overlap rim like the hole (1×, not the official 10×)",
        file="gantrain/families/inpainting.py",
        tests=[
            "tests/test_inpainting.py::test_the_generator_loss_has_no_gradient_outside_hole_and_rim_and_ten_times_the_weight_on_the_rim"
        ],
        old="        return mask.float() + self.rim_weight * rim(mask, self.overlap).float()",
        new="        return mask.float() + rim(mask, self.overlap).float()",
    ),
    # ------------------------------------------------------------------ CycleGAN (Zhu et al. 2017)
    Mutation(
        name="cyclegan_cycle_against_the_other_domain",
        description="CycleGAN's cycle term compares G_BA(G_AB(a)) with b instead of a (and G_AB(G_BA(b)) with a)",
        file="gantrain/families/cyclegan.py",
        tests=[
            "tests/test_cyclegan.py::test_identity_generators_make_the_cycle_and_identity_losses_exactly_zero",
            "tests/test_cyclegan.py::test_generator_and_discriminator_losses_are_eqs_1_to_3_with_the_identity_term_and_d_on_the_generators_fakes",
        ],
        old="        cycle = F.l1_loss(g_ba(fake_b), a) + F.l1_loss(g_ab(fake_a), b)",
        new="        cycle = F.l1_loss(g_ba(fake_b), b) + F.l1_loss(g_ab(fake_a), a)",
    ),
    Mutation(
        name="cyclegan_pool_swaps_below_capacity",
        description="CycleGAN's image pool hands D stored images before it is full (only from a full pool may it swap)",
        file="gantrain/families/cyclegan.py",
        tests=["tests/test_cyclegan.py::test_a_pool_of_size_zero_returns_its_input_and_below_capacity_returns_and_stores_it"],
        old="            if n < self.size:",
        new="            if n < self.size and (n == 0 or float(torch.rand(())) > 0.5):",
    ),
    # ------------------------------------------------------------------ StarGAN (Choi et al. 2018)
    Mutation(
        name="stargan_reconstructs_with_the_target_domain",
        description="StarGAN's reconstruction term is x against G(G(x, c), c), the target domain, instead of the original c'",
        file="gantrain/families/stargan.py",
        tests=[
            "tests/test_stargan.py::test_the_reconstruction_term_is_x_against_g_of_g_x_target_with_the_original_domains",
            "tests/test_stargan.py::test_the_generator_loss_is_adversarial_plus_classification_plus_ten_times_reconstruction",
        ],
        old="        return fake, (x - g(fake, self.condition(original))).abs().mean()",
        new="        return fake, (x - g(fake, self.condition(target))).abs().mean()",
    ),
    # ------------------------------------------------------------------ pix2pix (Isola et al. 2017)
    Mutation(
        name="pix2pix_d_loss_not_halved",
        description="pix2pix's D minimizes the whole BCE instead of half of it (model.d_loss_factor ignored)",
        file="gantrain/families/paired.py",
        tests=["tests/test_pix2pix.py::test_pix2pix_losses_are_eq4_with_lambda_100_and_half_the_bce_for_d"],
        old="        loss = self.d_loss_factor * adversarial",
        new="        loss = adversarial",
    ),
    Mutation(
        name="pix2pix_unet_skips_dropped",
        description="the U-Net's skips concatenate zeros instead of the encoder's activations (an encoder-decoder)",
        file="gantrain/models/pix2pix.py",
        tests=["tests/test_pix2pix.py::test_the_skips_carry_the_input_past_a_cut_bottleneck"],
        old="        return self.model(h) if self.outermost else torch.cat([h, self.model(h)], 1)",
        new="        return self.model(h) if self.outermost else torch.cat([torch.zeros_like(h), self.model(h)], 1)",
    ),
    # ------------------------------------------------------------------ SPADE (Park et al. 2019)
    Mutation(
        name="spade_scales_by_gamma_not_one_plus_gamma",
        description="SPADE's output is norm(x)·γ + β instead of Eq. 1's norm(x)·(1 + γ) + β",
        file="gantrain/models/spade.py",
        tests=["tests/test_spade.py::test_spade_with_zero_gamma_beta_convs_is_the_plain_normalization_and_gamma_scales_by_one_plus_gamma"],
        old="        return normalized * (1 + self.gamma(actv)) + self.beta(actv)",
        new="        return normalized * self.gamma(actv) + self.beta(actv)",
    ),
    Mutation(
        name="segmentation_maps_resized_bilinearly",
        description="a segmentation folder's index maps are resized bilinearly, blending neighbouring classes",
        file="gantrain/data/segmentation.py",
        tests=["tests/test_segmentation_data.py::test_a_folder_gives_int64_maps_of_the_stored_values_resized_by_nearest_neighbour"],
        old="interpolation=transforms.InterpolationMode.NEAREST",
        new="interpolation=transforms.InterpolationMode.BILINEAR",
    ),
    Mutation(
        name="psnr_with_the_models_range",
        description="PSNR of images mapped to [0, 1] taken with the model's data range of 2 ([-1, 1]): 6 dB too high",
        file="gantrain/metrics/paired.py",
        tests=["tests/test_paired_metrics.py::test_identical_pairs_score_zero_l1_unit_ssim_and_an_offset_gives_the_closed_form_psnr"],
        old="psnr = [peak_signal_noise_ratio(r, f, data_range=1.0) for r, f in zip(real, fake)]",
        new="psnr = [peak_signal_noise_ratio(r, f, data_range=2.0) for r, f in zip(real, fake)]",
    ),
    Mutation(
        name="evaluator_scores_translations_against_shuffled_targets",
        description="the evaluator's paired metrics compare each translation with another row's target",
        file="gantrain/metrics/evaluator.py",
        tests=["tests/test_paired_metrics.py::test_the_evaluator_scores_a_familys_samples_against_its_targets_in_order"],
        old="scores = paired_scores(samples, target[: len(samples)].to(samples.dtype),",
        new="scores = paired_scores(samples, target[: len(samples)].roll(1, 0).to(samples.dtype),",
    ),
    Mutation(
        name="stargan_round_trip_back_to_the_target_domain",
        description="StarGAN's held-out reconstruction translates back into the target domain instead of the image's own",
        file="gantrain/families/stargan.py",
        tests=["tests/test_stargan.py::test_the_held_out_round_trip_l1_is_x_against_g_of_g_x_target_with_its_own_domain"],
        old='return inputs["source"], g(g(inputs["source"], inputs["domain"]), inputs["origin"])',
        new='return inputs["source"], g(g(inputs["source"], inputs["domain"]), inputs["domain"])',
    ),
    Mutation(
        name="cyclegan_round_trip_without_the_way_back",
        description="CycleGAN's held-out cycle error compares A with G_AB(A) instead of G_BA(G_AB(A))",
        file="gantrain/families/cyclegan.py",
        tests=["tests/test_cyclegan.py::test_the_held_out_round_trip_l1_is_the_mean_cycle_error_of_g_ba_after_g_ab"],
        old='return a, self.networks["G_BA"](self.sampling_network(network)(a))',
        new="return a, self.sampling_network(network)(a)",
    ),
]
