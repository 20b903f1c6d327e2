"""``python -m gantrain`` (what ``torchrun --nproc_per_node=N -m gantrain <overrides>`` runs on every process)."""

from gantrain.cli import main

main()
