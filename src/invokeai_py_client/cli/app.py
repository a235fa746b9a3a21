"""The ``ivk`` application: the typer app, its command groups, and error handling.

Every command goes through :class:`IvkGroup.invoke`, which turns exceptions into a one-line
message and an exit code (2 for user mistakes, 1 for failures, 130 for Ctrl-C), with the
traceback only under ``--debug``. :func:`main` is the console-script entry point; it also
turns click's own usage errors (an unknown option, a missing argument) into one line.
"""

from __future__ import annotations

import signal
import sys
import traceback
from typing import Any

import typer
from typer._click.core import Context
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

from ._common import (
    API_KEY_ENV,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    STATE,
    CliError,
    classify,
    emit,
    report_error,
    set_api_key,
    stderr,
    summary,
)


class IvkGroup(TyperGroup):
    """The top-level command group: maps every error to a one-line message and exit code."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, ClickException):
            raise
        except (typer.Abort, KeyboardInterrupt):
            _interrupted()
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if STATE.debug:
                traceback.print_exc()
            err = classify(exc)
            report_error(err)
            raise typer.Exit(err.exit_code) from None


def _interrupted() -> None:
    if STATE.json_mode:
        emit({"type": "error", "error_code": "interrupted", "message": "interrupted"})
        summary(False, error_code="interrupted")
    else:
        stderr.print("ivk: interrupted")


app = typer.Typer(
    cls=IvkGroup,
    name="ivk",
    help="Run InvokeAI GUI workflows from the terminal: inputs, sweeps, batch runs, sheets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"ivk (invokeai-py-client) {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of any error (also IVK_DEBUG=1)."
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar=API_KEY_ENV,
        show_default=False,
        metavar="TOKEN",
        help="Token for a multi-user InvokeAI server (never printed; the environment "
        "variable keeps it out of the process list).",
    ),
) -> None:
    """Global options (before the command: ``ivk --debug run ...``)."""
    if debug:
        STATE.debug = True
    if api_key:
        set_api_key(api_key)


def _register() -> None:
    from . import auth, inputs, resources, run, tools

    inputs.register(app)
    run.register(app)
    tools.register(app)
    resources.register(app)
    auth.register(app)


_register()


def _api_key_first(args: list[str]) -> list[str]:
    """Move ``--api-key TOKEN`` (or ``--api-key=TOKEN``) given after the command to the front.

    It is a global option, but ``ivk run wf.json --api-key TOKEN`` should work too.
    """
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg.startswith("--api-key=") and i > 0:
            return [arg, *args[:i], *args[i + 1 :]]
        if arg == "--api-key" and i > 0 and i + 1 < len(args):
            return [arg, args[i + 1], *args[:i], *args[i + 2 :]]
    return args


def main(argv: list[str] | None = None) -> int:
    """The ``ivk`` console script. Returns (and exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    # a shell starts background jobs with SIGINT ignored; ivk must still stop on Ctrl-C/SIGINT
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if "--debug" in args:
        STATE.debug = True
    args = _api_key_first(args)
    STATE.json_mode = "--json" in args
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="ivk", standalone_mode=False)
    except ClickException as exc:
        if STATE.debug:
            traceback.print_exc()
        report_error(CliError(exc.format_message(), exit_code=exc.exit_code or EXIT_USAGE))
        code = exc.exit_code or EXIT_USAGE
    except (typer.Abort, KeyboardInterrupt):
        _interrupted()
        code = EXIT_INTERRUPTED
    else:
        code = rv if isinstance(rv, int) else 0
    sys.stdout.flush()
    if argv is None:
        sys.exit(code)
    return code
