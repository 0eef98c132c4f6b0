"""The typer app and what every command shares: the echoed command line and one-line usage errors."""
from __future__ import annotations

import shlex

import typer

app = typer.Typer(help="Find faces in photos and videos, classify their emotion, write annotated media and CSV "
                       "reports.", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def main() -> None:
    """batchemo: emotion analysis of faces in photo folders and videos."""


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
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)
