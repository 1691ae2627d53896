"""Flatten and rebuild the nested lists, tuples and dicts that layers take and return."""


def flatten(struct):
    """Leaves of a nested list/tuple/dict structure, dicts in key order as given."""
    if isinstance(struct, (list, tuple)):
        out = []
        for item in struct:
            out.extend(flatten(item))
        return out
    if isinstance(struct, dict):
        out = []
        for item in struct.values():
            out.extend(flatten(item))
        return out
    return [struct]


def map_structure(fn, struct):
    """Apply `fn` to every leaf, keeping the structure."""
    if isinstance(struct, list):
        return [map_structure(fn, s) for s in struct]
    if isinstance(struct, tuple):
        return tuple(map_structure(fn, s) for s in struct)
    if isinstance(struct, dict):
        return {k: map_structure(fn, v) for k, v in struct.items()}
    return fn(struct)


def pack_like(struct, flat):
    """Rebuild `struct`'s shape from the leaves in `flat` (the inverse of `flatten`)."""
    it = iter(flat)
    result = map_structure(lambda _: next(it), struct)
    return result


def is_shape(x):
    """A shape is a tuple or list of ints and Nones (an empty tuple is a scalar's shape)."""
    return isinstance(x, (tuple, list)) and all(d is None or isinstance(d, int) for d in x) and (
        len(x) > 0 or isinstance(x, tuple))
