"""One module per `mnistmem` subcommand: `add_arguments(parser)` and `run(args) -> int`."""
