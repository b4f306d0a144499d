"""Expected errors: each carries the process exit code the CLI ends with."""

from __future__ import annotations


class StabcheckError(Exception):
    """Base of every error stabcheck expects; ``exit_code`` is what the CLI returns."""

    exit_code: int = 3


class UsageError(StabcheckError):
    """A bad command line, config file or input (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """The TOML config or a flag value breaks a rule."""


class InputError(UsageError):
    """The model, the data or their combination cannot be probed as given."""


class InternalError(StabcheckError):
    """A bug or an environment failure inside stabcheck (exit code 3)."""

    exit_code = 3
