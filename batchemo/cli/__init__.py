"""The `batchemo` command line: a thin typer layer over the library API (media: the main jobs; model: train,
evaluate, export)."""
from . import media, model  # noqa: F401  (registers the commands)
from .app import app

__all__ = ["app"]
