"""Exceptions. Bad input raises a ValueError-family exception everywhere in the package."""


class CollapseError(ValueError):
    """Bad input: a file, a corpus, a config value or an argument that cannot be used.

    A subclass of ValueError, so callers can catch either. The CLI turns it into one line
    on stderr and exit status 2.
    """
