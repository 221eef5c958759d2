"""Command lines: argument parsing, file names in messages, exceptions to exit codes."""
