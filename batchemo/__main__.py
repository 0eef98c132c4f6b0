from .cli.commands import app

app(prog_name="batchemo")
