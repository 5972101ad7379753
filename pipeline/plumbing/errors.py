"""Errors a user can cause, each with its own exit code (documented in the README).

A ``ZooError`` ends the command with one line on stderr and its ``exit_code``; the
traceback goes to ``logs/zoo.log`` (or to the terminal with ``--verbose``).
"""

from __future__ import annotations


class ZooError(Exception):
    """Base class: a failure the user can act on, reported as one line."""

    exit_code = 1


class ConfigError(ZooError):
    """``params.yaml`` or a command-line setting is invalid; nothing has been written."""

    exit_code = 2

    def __init__(self, path: str, message: str, source: str | None = None):
        self.path = path
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {message}" if path else f"{where}{message}")


class DataError(ZooError):
    """A dataset is missing, does not match its manifest, or could not be fetched."""

    exit_code = 3


class TrackingError(ZooError):
    """The MLflow tracking store cannot be reached or used."""

    exit_code = 4


class TrainingError(ZooError):
    """Training failed on its own terms (for example the loss became NaN)."""

    exit_code = 5


class ModelError(ZooError):
    """A checkpoint is missing, corrupt or does not fit the configured model."""

    exit_code = 6


EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT


class Interrupted(ZooError):
    """Ctrl-C (SIGINT): the stage stopped; where it can, it kept what it needs to resume."""

    exit_code = EXIT_INTERRUPTED
