"""The one exception type the CLI turns into a single line and exit code 2."""


class EdgewriteError(Exception):
    """Bad input or an unmet precondition: the message says what is wrong and what to do."""
