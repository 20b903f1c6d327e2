"""Method families: how one discriminator step and one generator (or model) step are computed."""
