"""The one exception the CLI turns into a one-line message and exit code 2."""


class ConfigError(ValueError):
    """A configuration or input that cannot work, found before any training starts."""
