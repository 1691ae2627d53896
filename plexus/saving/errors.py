"""The error every refused or broken file raises."""
import contextlib


class LoadError(ValueError):
    """A model or weights file could not be loaded: it is missing, truncated, corrupt, of the
    wrong format, does not match the model, or asks for something plexus refuses to do.

    A `ValueError`, so code catching Keras's loading errors keeps working.
    """


# What code reading a malformed config or file can raise on its way; anything else (a
# MemoryError, a KeyboardInterrupt, NotImplementedError for what plexus does not support yet)
# passes unchanged.
_MALFORMED = (AttributeError, KeyError, IndexError, TypeError, ValueError, RuntimeError,
              OverflowError, ZeroDivisionError, UnicodeError)


@contextlib.contextmanager
def as_load_errors(what):
    """Turn errors raised while reading `what` (a file and its member) into `LoadError`s that
    name it; the original error stays attached as the cause."""
    try:
        yield
    except (LoadError, NotImplementedError):
        raise
    except RecursionError as e:
        raise LoadError(f"{what} is nested absurdly deep; refused.") from e
    except _MALFORMED as e:
        raise LoadError(f"{what} is malformed: {type(e).__name__}: {str(e)[:300]}") from e
