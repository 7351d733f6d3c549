from examples.clickcount.cli import cli

cli()
