"""The one exception hierarchy of qhw.

Every error a user can cause or meet derives from :class:`QhwError`; the CLI
turns it into one line on stderr. Leaves also inherit the matching builtin so
library callers can catch ``ValueError`` or ``LookupError`` as usual.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable


class QhwError(Exception):
    """Root of every error qhw raises on purpose."""


# --- input and configuration -------------------------------------------------


class ConfigError(QhwError, ValueError):
    """A setting, option or argument is invalid."""


class ParameterError(ConfigError):
    """An argument of a library call is invalid. It names the parameter as the
    call does (``pack_spacing``), and so does its message, with any other
    parameter it mentions (written with :meth:`ref`): each caller words them
    its own way, the library by their names, the command line as its options
    (``--pack-spacing``, see ``qhw.cli_options.option_for``).
    """

    _MARK = "\x00"  # around a parameter's name in the message: no value qhw shows holds one (qhw.boundary.quoted)

    def __init__(self, parameter: str, problem: str) -> None:
        self.parameter = parameter
        self.problem = problem
        super().__init__(self.worded(str))

    @classmethod
    def ref(cls, parameter: str) -> str:
        """Another parameter, named in a message."""
        return f"{cls._MARK}{parameter}{cls._MARK}"

    def worded(self, name: Callable[[str], str]) -> str:
        """The message, each parameter shown as ``name(parameter)``."""
        separator = "" if self.problem.startswith(":") else " "
        parts = f"{self.ref(self.parameter)}{separator}{self.problem}".split(self._MARK)
        return "".join(name(part) if odd else part for odd, part in zip(itertools.cycle((False, True)), parts))

    def problem_worded(self, name: Callable[[str], str]) -> str:
        """What is wrong, without the parameter's own name in front (a click type's message)."""
        return self.worded(name).removeprefix(name(self.parameter)).removeprefix(":").lstrip()

    def __reduce__(self):  # pickled as it was made (it crosses from a worker process)
        return type(self), (self.parameter, self.problem)


class DatasetError(QhwError, ValueError):
    """A dataset is missing, truncated or malformed."""


class CredentialsError(ConfigError):
    """A provider's credentials are missing or were rejected: the command stops, no job changes."""


class ArtifactError(QhwError):
    """A file qhw wrote earlier (feature arrays, a model) is missing or corrupted."""


class TransientArtifactError(ArtifactError):
    """The artifact store failed in a way that may pass (a timeout, a 5xx, throttling): retried."""


class NotFoundError(QhwError, LookupError):
    """A feature set, run, model or backend with that name or id does not exist."""


class UnknownBackendError(NotFoundError):
    """No backend is registered under that name."""


# --- database ------------------------------------------------------------------


class StoreError(QhwError):
    """The tracking database could not be reached or used."""


class ConflictError(StoreError):
    """Another qhw process changed the same rows first; nothing was written."""


class SchemaOutdatedError(StoreError):
    """The database schema is older than this qhw; `qhw db upgrade` fixes it."""


class TrackerError(QhwError):
    """The experiment tracker (MLflow) is not installed, cannot be reached, or refused what was logged."""


# --- backends and jobs ---------------------------------------------------------


class BackendError(QhwError):
    """A provider or simulator refused or failed a request."""


class TransientBackendError(BackendError):
    """A network error, timeout, throttling (HTTP 429) or provider-side 5xx.

    Says nothing about the job itself: the call is worth repeating later, and
    the job keeps its state. Adapters raise it; only they know their provider's
    errors well enough to tell transient from final.
    """


class ListingLagError(TransientBackendError):
    """A lookup by tag found nothing, but the provider's job listing may not
    show a job accepted this recently: "not found" is no answer yet."""


class ProviderAnswerError(BackendError):
    """A provider answered, with a document that cannot be read (a field of the
    wrong type): what depends on it stops before anything is written or sent."""


class JobNotFoundError(BackendError, LookupError):
    """The provider no longer knows a job id (e.g. a local job from a finished process)."""


class JobFailedError(BackendError):
    """A job ended in failure; the message holds the provider's reason."""


class TrainingError(QhwError, ValueError):
    """Training or evaluation cannot proceed with the data given."""


class ResultMappingError(JobFailedError):
    """A finished job's results cannot be mapped to its executions by the
    provider's own indices (a result index out of range or repeated, a measured
    qubit missing): nothing of it is stored, and the job fails with the reason."""
