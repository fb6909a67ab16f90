"""The ``dgslm`` command line: one program, one module per subcommand."""
