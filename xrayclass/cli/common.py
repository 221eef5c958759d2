"""What every command line shares: its parser's -v/-q and help, its log lines, its error
reporting and exit status, and how its script ends.

Each ``main`` parses its options, then calls :func:`run_command`, which reports a bad
input in one line (exit 2), a failed service (exit 3), an interruption, and anything
else as a bug (exit 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, NoReturn, TypeVar

from xrayclass.exceptions import EXIT_INPUT_ERROR, EXIT_SERVICE_ERROR, InputError, ServiceError
from xrayclass.text import one_line

__all__ = [
    "EXIT_BUG",
    "DefaultsFormatter",
    "Terminated",
    "command_parser",
    "config_from_args",
    "configure_logging",
    "exit_promptly",
    "report_errors",
    "run_command",
    "verbosity_options",
]

log = logging.getLogger("xrayclass")

#: Exit status of an unexpected error (a bug): Python's own for an uncaught exception.
EXIT_BUG = 1

Config = TypeVar("Config")


class _StageFormatter(logging.Formatter):
    def __init__(self, stage: str) -> None:
        super().__init__("%(message)s")
        self.stage = stage

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        level = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        return f"[{self.stage}] {level}{message}"


def configure_logging(stage: str, verbosity: int = 0) -> None:
    """Log lines ``[stage] message`` to stderr; -v adds detail, -q keeps warnings only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StageFormatter(stage))
    root = logging.getLogger("xrayclass")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO)
    root.propagate = False


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults in ``--help``, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.required or action.nargs == 0:  # flags say nothing
            return action.help
        return super()._get_help_string(action)


def verbosity_options() -> argparse.ArgumentParser:
    """The -v / -q options every command takes, as an argparse parent parser."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_mutually_exclusive_group()
    for flags, const, what in (
        (("-v", "--verbose"), 1, "log more detail"),
        (("-q", "--quiet"), -1, "log warnings and errors only"),
    ):
        group.add_argument(
            *flags, action="store_const", const=const, dest="verbosity", default=argparse.SUPPRESS, help=what
        )
    return options


def command_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A command's parser: -v/-q, and the defaults shown in ``--help``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=DefaultsFormatter, parents=[verbosity_options()]
    )
    parser.set_defaults(verbosity=0)
    return parser


def config_from_args(config: type[Config], args: argparse.Namespace, **resolved: Any) -> Config:
    """``config`` with the options of ``args`` named like its fields (argparse ``dest``), and ``resolved``.

    An option whose ``dest`` is a field of the stage's config goes into it without
    further code; a value the config refuses is refused in its words, the field that
    starts them named as its option (``fit_sample 3 ...`` becomes ``--fit-sample 3 ...``).
    """
    given = vars(args)
    names = [field.name for field in dataclasses.fields(config)]  # type: ignore[arg-type]
    try:
        return config(**{name: given[name] for name in names if name in given and name not in resolved}, **resolved)
    except InputError as exc:
        field, _, rest = str(exc).partition(" ")
        if field in names and field in given:
            raise InputError(f"--{field.replace('_', '-')} {rest}") from None
        raise


class Terminated(BaseException):
    """SIGTERM (or SIGHUP) arrived: unwind, so that every temporary file is removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def _install_signal_handlers() -> dict[int, Any]:
    """Turn SIGTERM/SIGHUP into an exception (SIGINT already is one); return the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, _raise_terminated)
    return previous


def report_errors(prog: str, body: Callable[..., object], *args: Any) -> int:
    """Call ``body(*args)``; a bad input ends it with exit 2, a failed service with 3.

    Either way the user sees one line, ``PROG: error: ...``, and no traceback. An
    interruption (Ctrl-C, SIGTERM) ends it with 128 + the signal number, after the
    temporary files are removed. Anything else is a bug: one line saying so, exit 1,
    and the traceback under -v.
    """
    previous = _install_signal_handlers()
    try:
        body(*args)
    except InputError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except ServiceError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_SERVICE_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing written", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"{prog}: terminated by signal {exc.signum}; nothing written", file=sys.stderr)
        return 128 + exc.signum
    except MemoryError:
        print(f"{prog}: error: out of memory; nothing written", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except Exception as exc:  # noqa: BLE001 - the last line of defence: say it is ours
        if log.isEnabledFor(logging.DEBUG):
            traceback.print_exc(file=sys.stderr)
        print(
            f"{prog}: internal error (a bug in xrayclass, please report it with the command line): "
            f"{type(exc).__name__}: {one_line(exc, 200)}"
            + ("" if log.isEnabledFor(logging.DEBUG) else "; run with -v for the traceback"),
            file=sys.stderr,
        )
        return EXIT_BUG
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0


def run_command(
    stage: str,
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], None],
    argv: Sequence[str] | None,
) -> int:
    """Parse ``argv``, log as ``[stage]``, and call ``body(args)`` under :func:`report_errors`."""
    args = parser.parse_args(argv)
    configure_logging(stage, args.verbosity)
    return report_errors(parser.prog, body, args)


def exit_promptly(status: int) -> NoReturn:
    """End a command's script with ``status`` (``sys.exit``), skipping the garbage collections of shutdown.

    A stage has imported about 1,500 modules (pandas, scikit-learn, SciPy, astropy);
    :func:`gc.freeze` moves their objects to the permanent generation, which the
    interpreter's collections at exit leave alone, so that ending costs nearly nothing
    (``benchmarks/`` measure the stages as scripts). Everything ``sys.exit`` does is
    done: the exit handlers run (libraries' clean-ups, temporary files), the log and
    the standard streams are flushed.
    """
    gc.freeze()
    sys.exit(status)
