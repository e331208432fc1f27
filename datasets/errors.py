MAX_QUOTED = 100  # characters of any value taken from a data file that a message may quote


class DataError(ValueError):
    """The data cannot be used as it is; the message names the file or field and what was expected."""


def shorten(text: str, limit: int = MAX_QUOTED) -> str:
    """``text`` cut to about ``limit`` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}...({len(text):,} chars)"


def quote(value) -> str:
    """``repr(value)`` (a value, a list of names, ...) cut to about :data:`MAX_QUOTED` characters."""
    return shorten(repr(value))
