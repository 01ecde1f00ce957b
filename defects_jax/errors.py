"""The project's own error types: expected failures a user can act on.

The command line prints these as one or two lines (the message, then what to
do) instead of a traceback; ``--debug`` or ``DEFECTS_JAX_DEBUG=1`` shows the
traceback. Library code raises them with messages that name the file, the
config field or the step and what was expected.

Each subclasses a built-in type too (``ValueError``, ``RuntimeError``, ...),
so code that caught the built-in type before keeps working.
"""

from __future__ import annotations


class DefectsJaxError(Exception):
  """Base class. ``hint`` is an optional second line: what to do about it.

  ``exit_code`` is the command line's exit status for this error.
  """

  exit_code = 1

  def __init__(self, message: str, *, hint: str = ""):
    super().__init__(message)
    self.hint = hint


class ConfigError(DefectsJaxError, ValueError):
  """A config field, preset, experiment or override is invalid or unknown."""

  exit_code = 2


class RunFolderError(DefectsJaxError, FileNotFoundError):
  """A folder is not a run folder, or lacks what the command needs."""

  exit_code = 2


class DeviceError(DefectsJaxError, RuntimeError):
  """A preset meant for an accelerator was started on the CPU backend."""

  exit_code = 2


class NonFiniteError(DefectsJaxError, RuntimeError):
  """A NaN or inf appeared in the step metrics; the run stopped."""


class Interrupted(DefectsJaxError):
  """SIGINT / SIGTERM: a checkpoint was saved at a step boundary and the run
  stopped; ``defects-jax resume RUN_DIR`` continues it."""

  exit_code = 130


def find_project_error(exc: BaseException) -> DefectsJaxError | None:
  """The first :class:`DefectsJaxError` in ``exc``'s chain (``exc`` itself,
  then its ``__cause__`` / ``__context__``), or None.

  grain re-raises errors of its worker processes and of its transforms
  wrapped in its own types; the project's error is further down the chain.
  """
  seen = set()
  while exc is not None and id(exc) not in seen:
    if isinstance(exc, DefectsJaxError):
      return exc
    seen.add(id(exc))
    exc = exc.__cause__ or exc.__context__
  return None
