"""Process-wide state users expect: the counters behind default layer names."""
import re

_name_counts = {}


def to_snake_case(name):
    """`Conv2D` -> `conv2d`, `MaxPooling1D` -> `max_pooling1d`, `LSTM` -> `lstm`,
    `ConvLSTM2D` -> `conv_lstm2d` (Keras's rule, so default names and file paths agree)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def unique_name(prefix):
    """Return `prefix`, then `prefix_1`, `prefix_2`... as Keras names layers."""
    count = _name_counts.get(prefix, 0)
    _name_counts[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def clear_session():
    """Reset the default-name counters (`dense`, `dense_1`, ... start again) and the global
    dtype policy (back to `"float32"`)."""
    _name_counts.clear()
    from plexus.mixed_precision import policy  # noqa: (imported late: it needs plexus.graph)
    policy._reset()


def floatx():
    return "float32"
