"""Checks of the arguments of `fit`, `evaluate` and `predict`, made before any data is read
or any step runs: a wrong argument fails here with a message that names it."""
import numbers


def _fail(name, value, expected):
    raise ValueError(f"{name} must be {expected}; received {value!r}.")


def _int(name, value, minimum, allow_none=True):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        _fail(name, value, f"an integer >= {minimum}" + (" or None" if allow_none else ""))


def _verbose(value):
    if value != "auto" and value not in (0, 1, 2, True, False):
        _fail("verbose", value, "'auto', 0, 1 or 2")


def check_fit_args(batch_size=None, epochs=1, verbose="auto", validation_split=0.0,
                   initial_epoch=0, steps_per_epoch=None, validation_steps=None,
                   validation_freq=1):
    """ValueError for a `fit` argument of the wrong kind or range."""
    _int("batch_size", batch_size, 1)
    _int("epochs", epochs, 0, allow_none=False)
    _int("initial_epoch", initial_epoch, 0, allow_none=False)
    _int("steps_per_epoch", steps_per_epoch, 1)
    _int("validation_steps", validation_steps, 1)
    _verbose(verbose)
    if not isinstance(validation_split, numbers.Real) or not 0 <= validation_split < 1:
        _fail("validation_split", validation_split, "a number in [0, 1)")
    if isinstance(validation_freq, (list, tuple, set)):
        for v in validation_freq:
            _int("validation_freq entries", v, 1, allow_none=False)
    else:
        _int("validation_freq", validation_freq, 1, allow_none=False)


def check_evaluate_args(batch_size=None, verbose="auto", steps=None):
    """ValueError for an `evaluate` argument of the wrong kind or range."""
    _int("batch_size", batch_size, 1)
    _int("steps", steps, 1)
    _verbose(verbose)


def check_predict_args(batch_size=None, verbose="auto", steps=None):
    """ValueError for a `predict` argument of the wrong kind or range."""
    _int("batch_size", batch_size, 1)
    _int("steps", steps, 1)
    _verbose(verbose)
