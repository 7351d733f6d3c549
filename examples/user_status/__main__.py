from examples.user_status.cli import cli

cli()
