class DataError(ValueError):
    """The data cannot be used as it is; the message names the file or field and what was expected."""
