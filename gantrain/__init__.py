"""gantrain: train, evaluate and explore generative image models from one config-driven CLI."""

__version__ = "0.1.0"
