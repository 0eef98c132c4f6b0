"""The typer app and what every command shares: the echoed command line, one-line usage errors, plurals, and
help that reads well."""
from __future__ import annotations

import shlex
from importlib.metadata import PackageNotFoundError, version

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class _FlagsTakeNoValue:
    """typer shows `<bool>` after every flag in --help, as if `--redo true` were the way to write it (it is
    refused): flags get no type column."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            _readable(param)

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            _readable(option)
        return option


def _readable(param) -> None:
    if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
        param.metavar = ""
    elif isinstance(param, TyperArgument) and param.metavar is None:
        # PATH and INPUTS... as the docstrings and the docs name them (typer writes `path`, `{path}`).
        param.metavar = param.name.upper() + ("..." if param.nargs != 1 else "")


class Command(_FlagsTakeNoValue, TyperCommand):
    """Every batchemo command: flags without a type, arguments in capitals (PATH, INPUTS...)."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        # typer writes a required argument as `{path}`: the conventional `PATH`, `[PATH]` for an optional one.
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(param.metavar if param.required else f"[{param.metavar}]")
        return pieces


class Group(_FlagsTakeNoValue, TyperGroup):
    """The `batchemo` group itself (its --version and --help)."""


app = typer.Typer(help="Find faces in photos and videos, classify their emotion, write annotated media and CSV "
                       "reports.", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  cls=Group)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"batchemo {package_version()}")
        raise typer.Exit()


def package_version() -> str:
    """The installed distribution's version (pyproject.toml's, via the package metadata)."""
    try:
        return version("batchemo")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


@app.callback()
def main(show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")) -> None:
    """batchemo: emotion analysis of faces in photo folders and videos."""


def plural(n: int, word: str) -> str:
    """'1 face', '2 faces', '0 faces' (every word the CLI counts takes an s)."""
    return f"{n} {word if n == 1 else word + 's'}"


def command_line(ctx: typer.Context, only: set[str] | None = None) -> str:
    """The running command with every option spelled out: exact and re-runnable, whatever defaults become.
    `only`: the options that matter for this run (the others are left out instead of misleading)."""
    parts = ["batchemo", ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.param_type_name == "argument":
            parts += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
        elif value is None or (only is not None and param.name not in only):
            continue
        elif isinstance(value, (list, tuple)):
            for v in value:
                parts += [param.opts[0], str(v)]
        elif isinstance(value, bool) and param.is_flag:
            if param.secondary_opts:
                parts.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                parts.append(param.opts[0])
        else:
            parts += [param.opts[0], str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def fail(msg: str, code: int = 2) -> None:
    """One line on stderr, then exit (2: usage error, as docs/jobs.md's exit codes say)."""
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)
