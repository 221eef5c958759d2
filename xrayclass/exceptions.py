"""The package's exceptions: one small hierarchy, mapped to exit codes by the command lines.

Science functions raise these with a message that says what is wrong in one line; they
do not know file names. The command-line layer adds the file name (as a note or a
prefix) and turns :class:`InputError` and :class:`ArtifactError` into exit status 2 and
:class:`ServiceError` into exit status 3.
"""

__all__ = ["EXIT_INPUT_ERROR", "EXIT_SERVICE_ERROR", "ArtifactError", "InputError", "ServiceError", "XrayclassError"]

#: Exit status of a command given bad input (a file, an argument or an artifact).
EXIT_INPUT_ERROR = 2
#: Exit status of a command whose external service failed (network, time-out, HTTP or
#: service-side error).
EXIT_SERVICE_ERROR = 3


class XrayclassError(Exception):
    """Base class of the errors the package raises on purpose."""


class InputError(XrayclassError):
    """A problem with an input table or argument, stated in one line for the user."""


class ArtifactError(InputError):
    """A model or classifier artifact (JSON) that is not what it should be."""


class ServiceError(XrayclassError):
    """An external service failed; the message says what failed and what to do, in one line."""
