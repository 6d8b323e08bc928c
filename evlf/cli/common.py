"""The typer app, global options, and the error policy every command shares."""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import traceback
from typing import Any, NoReturn

import typer
from rich.console import Console

from evlf import __version__
from evlf.core.errors import ConfigError, EvlfError, InputError, PluginError

app = typer.Typer(
    name="evlf",
    help="Medical images to a reasoned, grounded diagnostic report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Wide enough for tables when stdout is a pipe or a log (rich assumes 80 columns there).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
_state: dict[str, Any] = {"debug": False}

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1


def _version(value: bool) -> None:
    if value:
        typer.echo(f"evlf {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for internal faults."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    _state["debug"] = debug


def debug_enabled() -> bool:
    return bool(_state["debug"]) or "--debug" in sys.argv


def print_json(data: Any) -> None:
    """JSON on stdout, unstyled, so other programs can read it."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fail_input(message: str) -> None:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)


def exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown of torch and transformers' modules.

    That teardown adds about 3 s to every `evlf diagnose` on a loaded 2-core
    machine and does nothing a user needs: exit handlers still run and the
    streams are flushed. With another non-daemon thread alive it exits normally.
    """
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if others:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe
            pass
    os._exit(code)


def run_app(the_app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run the app and map errors to exit codes (2 bad input, 1 internal)."""
    try:
        code = the_app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except (InputError, ConfigError, PluginError) as exc:
        if debug_enabled():
            traceback.print_exc()
        fail_input(str(exc))
        return EXIT_BAD_INPUT
    except EvlfError as exc:
        if debug_enabled():
            traceback.print_exc()
        fail_input(str(exc))
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except typer.Abort:
        return 130
    except Exception as exc:
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):  # click/typer usage errors
            show()
            return int(exc.exit_code)  # type: ignore[attr-defined]
        if debug_enabled():
            traceback.print_exc()
        err_console.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return EXIT_INTERNAL
    return code if isinstance(code, int) else 0
