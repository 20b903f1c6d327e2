"""Latent-space tools for trained generators (the ``gantrain-explore`` command, gantrain/explore/cli.py).

Pure math in small modules (``paths``: lerp/slerp; ``directions``: attribute directions and their decoupling;
``maps``: least-squares maps between latent spaces; ``project``: inversion by optimization), the latent space of
each kind of checkpoint in ``spaces``, what is measured on images in ``measures`` (with gantrain/metrics/properties.py), and the tools
themselves in ``edit_tools`` (arithmetic, direction, decouple) and ``space_tools`` (interpolate, map, project,
truncation).
"""
