"""Nested structures, as `keras.tree`: `flatten`, `map_structure`, `pack_sequence_as`, ...

    import plexus as keras
    keras.tree.flatten({"b": [1, 2], "a": 3})          # [3, 1, 2]: dicts in sorted key order
    keras.tree.map_structure(lambda x: x * 2, (1, [2]))  # (2, [4])

Structures are lists, tuples, namedtuples, dicts (visited in sorted key order), `OrderedDict`s
and `defaultdict`s (kept in their order) and deques; everything else, `None` included, is a
leaf. Mismatched structures raise `ValueError`.
"""
import collections
import warnings


class MAP_TO_NONE:  # noqa: N801 (Keras's name)
    """Return this from a `traverse` function to put `None` in the structure."""


def _kind(x):
    """The node kind of `x`, or None for a leaf."""
    t = type(x)
    if t is list or t is dict or t is tuple or t is collections.OrderedDict \
            or t is collections.defaultdict or t is collections.deque:
        return t
    if isinstance(x, tuple) and hasattr(t, "_fields"):
        return "namedtuple"
    return None


def _children(x):
    """(keys, values) of a node; dicts in sorted key order."""
    kind = _kind(x)
    if kind is dict or kind is collections.defaultdict:
        keys = _sorted_keys(x)
        return keys, [x[k] for k in keys]
    if kind is collections.OrderedDict:
        return list(x), list(x.values())
    return list(range(len(x))), list(x)


def _sorted_keys(d):
    try:
        return sorted(d)
    except TypeError:
        raise TypeError(f"Cannot sort the keys {list(d)} of a dict in a structure; use "
                        "comparable keys (all strings, or all numbers).") from None


def _rebuild(x, values, keep_order=False):
    """A node like `x` holding `values` (in the order `_children` gave). A plain dict comes out
    in sorted key order, or with `keep_order` in `x`'s own order (as `map_structure` keeps it)."""
    kind = _kind(x)
    if kind is list:
        return list(values)
    if kind is tuple:
        return tuple(values)
    if kind == "namedtuple":
        return type(x)(*values)
    if kind is collections.deque:
        return collections.deque(values, maxlen=x.maxlen)
    pairs = dict(zip(_children(x)[0], values))
    if keep_order:
        pairs = {k: pairs[k] for k in x}
    if kind is collections.defaultdict:
        return collections.defaultdict(x.default_factory, pairs)
    return kind(pairs)


def is_nested(structure):
    """Whether `structure` is a list, tuple, dict, ... rather than a leaf."""
    return _kind(structure) is not None


def flatten(structure):
    """The leaves of `structure`, depth first; a leaf gives `[leaf]`."""
    if _kind(structure) is None:
        return [structure]
    out = []
    for child in _children(structure)[1]:
        out.extend(flatten(child))
    return out


def flatten_with_path(structure):
    """`(path, leaf)` pairs, each path the tuple of keys and indices leading to the leaf."""
    if _kind(structure) is None:
        return [((), structure)]
    out = []
    for key, child in zip(*_children(structure)):
        out.extend(((key,) + path, leaf) for path, leaf in flatten_with_path(child))
    return out


def _mismatch(a, b):
    return ValueError(
        "Structures don't have the same nested structure: "
        f"{_describe(a)} does not match {_describe(b)}.")


def _describe(x):
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_node(first, other):
    kind = _kind(first)
    if _kind(other) != kind or (kind == "namedtuple" and type(other) is not type(first)):
        raise _mismatch(first, other)
    keys_a, keys_b = _children(first)[0], _children(other)[0]
    if keys_a != keys_b:
        raise _mismatch(first, other)


def map_structure(func, *structures, none_is_leaf=True):
    """`func` applied to the leaves of `structures` (all of the same structure), in the
    structure of the first.

    Args:
        func: called with one leaf from each structure.
        *structures: one or more structures.
        none_is_leaf: when False, `None` entries are kept as `None` without calling `func`.
    """
    if not structures:
        raise ValueError("Must provide at least one structure")
    first = structures[0]
    if not none_is_leaf and first is None:
        if any(s is not None for s in structures):
            raise ValueError(f"Structure mismatch: some arguments are None, others are not. "
                             f"Received arguments: {structures}.")
        return None
    if _kind(first) is None:
        for other in structures[1:]:
            if _kind(other) is not None:
                raise _mismatch(first, other)
        return func(*structures)
    for other in structures[1:]:
        _check_node(first, other)
    columns = zip(*(_children(s)[1] for s in structures))
    return _rebuild(first, [map_structure(func, *c, none_is_leaf=none_is_leaf)
                            for c in columns], keep_order=True)


def map_structure_up_to(shallow_structure, func, *structures):
    """Like `map_structure`, but only down to the leaves of `shallow_structure`: `func` gets
    the (possibly nested) parts of `structures` found there."""
    if not structures:
        raise ValueError("Must provide at least one structure")
    if _kind(shallow_structure) is None:
        return func(*structures)
    for other in structures:
        _check_node(shallow_structure, other)
    columns = zip(*(_children(s)[1] for s in structures))
    return _rebuild(shallow_structure, [
        map_structure_up_to(shallow, func, *column)
        for shallow, column in zip(_children(shallow_structure)[1], columns)], keep_order=True)


def map_shape_structure(func, structure):
    """`func` applied to every shape (a list or tuple of ints and Nones) in `structure`."""
    if isinstance(structure, (list, tuple)) and all(
            isinstance(d, int) or d is None for d in structure):
        return func(structure)
    if _kind(structure) is None:
        return func(structure)
    return _rebuild(structure, [map_shape_structure(func, c)
                                for c in _children(structure)[1]])


def assert_same_structure(a, b, check_types=None):
    """Raise `ValueError` unless `a` and `b` nest the same way (node types included)."""
    if check_types is not None:
        warnings.warn("The `check_types` argument is deprecated and no longer has any effect. "
                      "For a looser check, use `plexus.tree.assert_same_paths()`.",
                      DeprecationWarning, stacklevel=2)
    map_structure(lambda *_: None, a, b)


def assert_same_paths(a, b):
    """Raise `ValueError` unless `a` and `b` have the same leaf paths (lists and tuples
    match each other)."""
    paths_a = {p for p, _ in flatten_with_path(a)}
    paths_b = {p for p, _ in flatten_with_path(b)}
    if paths_a != paths_b:
        msg = "`a` and `b` don't have the same paths."
        if paths_a - paths_b:
            msg += f"\nPaths in `a` missing in `b`:\n{paths_a - paths_b}"
        if paths_b - paths_a:
            msg += f"\nPaths in `b` missing in `a`:\n{paths_b - paths_a}"
        raise ValueError(msg)


def pack_sequence_as(structure, flat_sequence):
    """The leaves of `flat_sequence` arranged in the structure of `structure`."""
    flat_sequence = list(flat_sequence)
    needed = len(flatten(structure))
    if needed != len(flat_sequence):
        raise ValueError(
            f"pack_sequence_as: the structure holds {needed} leaves, but the flat sequence has "
            f"{len(flat_sequence)} items. Structure: {_describe(structure)}")
    it = iter(flat_sequence)

    def pack(s):
        if _kind(s) is None:
            return next(it)
        return _rebuild(s, [pack(c) for c in _children(s)[1]])

    return pack(structure)


def lists_to_tuples(structure):
    """`structure` with every list turned into a tuple."""
    if _kind(structure) is None:
        return structure
    values = [lists_to_tuples(c) for c in _children(structure)[1]]
    return tuple(values) if type(structure) is list else _rebuild(structure, values)


def traverse(func, structure, top_down=True):
    """Visit every node and leaf of `structure` with `func`.

    Top down (the default), `func` sees each node before its children: returning None goes on
    into the children, anything else replaces the node (`MAP_TO_NONE` puts None there).
    Bottom up, `func` sees each node after its children were traversed: None keeps the node.
    """
    def children_traversed(s):
        if _kind(s) is None:
            return s
        return _rebuild(s, [traverse(func, c, top_down) for c in _children(s)[1]])

    if top_down:
        ret = func(structure)
        if ret is None:
            return children_traversed(structure)
    else:
        structure = children_traversed(structure)
        ret = func(structure)
        if ret is None:
            return structure
    return None if ret is MAP_TO_NONE else ret


__all__ = ["MAP_TO_NONE", "assert_same_paths", "assert_same_structure", "flatten",
           "flatten_with_path", "is_nested", "lists_to_tuples", "map_shape_structure",
           "map_structure", "map_structure_up_to", "pack_sequence_as", "traverse"]
