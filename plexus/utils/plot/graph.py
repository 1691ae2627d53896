"""From a model to a drawable graph: one box per layer, one edge per connection.

A layer called several times (a shared layer) is one box with several incoming and outgoing
edges. A nested model is one box, or, with `expand_nested`, a cluster holding its own graph;
edges that enter or leave a cluster name the cluster's input or output port.
"""
from plexus.layers.input_layer import InputLayer


class Box:
    """One layer to draw: `key` is unique in the whole drawing, `lines` is its label."""

    def __init__(self, key, layer, lines, kind, is_output=False, frozen=False):
        self.key, self.layer, self.lines, self.kind = key, layer, lines, kind
        self.is_output, self.frozen = is_output, frozen


class Graph:
    """The boxes and edges of one model; `clusters` maps a box key to the expanded inner Graph.

    `edges` holds `(source, target, out_port, in_port)`: `out_port` is the output index when the
    source is an expanded cluster, `in_port` the input index when the target is one (else None).
    """

    def __init__(self, model, title):
        self.model, self.title = model, title
        self.boxes, self.edges, self.clusters = [], [], {}
        self.entry = {}  # input index -> key of the inner InputLayer box
        self.exit = {}  # output index -> (key of the producing box, its out_port)


def _is_graph_model(layer):
    from plexus.models.functional import Functional
    return isinstance(layer, Functional) and layer.built


def check_drawable(model):
    """Raise a ValueError telling how to fix a model that has no graph to draw."""
    from plexus.models.model import Model
    if not isinstance(model, Model):
        raise TypeError(f"plot_model expects a plexus Model; received {type(model).__name__}.")
    if not _is_graph_model(model):
        raise ValueError(
            f"Model {model.name!r} has no graph to draw: it is a subclassed model, or a "
            "Sequential model that has not been built. Build it functionally with "
            "Model(inputs, outputs), give the first Sequential layer an `input_shape`, or call "
            "`model.build(input_shape)` first."
        )


def _fmt_shape(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _shapes(tensors):
    texts = [_fmt_shape(t.shape) for t in tensors]
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"


def _wrap(prefix, text, width=44):
    """Split `prefix + text` into lines of about `width` characters at shape boundaries."""
    parts = text.replace("), (", ")|(").split("|")
    lines, cur = [], prefix
    for i, part in enumerate(parts):
        piece = part + ("," if i < len(parts) - 1 else "")
        if len(cur) + len(piece) > width and cur.strip():
            lines.append(cur.rstrip())
            cur = "   " + piece
        else:
            cur += ("" if cur.endswith(("[", ": ")) or not cur.strip() else " ") + piece
    lines.append(cur.rstrip())
    return lines


def _shape_lines(layer, nodes):
    """`input → output` shapes, one line per distinct call signature (two lines when long)."""
    seen, lines = set(), []
    for node in nodes:
        out = _shapes(node.output_tensors)
        if isinstance(layer, InputLayer):
            text = (out,)
        else:
            inp = _shapes(node.input_tensors)
            one = f"{inp} → {out}"
            text = (one,) if len(one) <= 44 else (*_wrap("in: ", inp), *_wrap("out: ", out))
        if text not in seen:
            seen.add(text)
            lines.extend(text)
    return lines


def _kind_name(layer):
    return type(layer).__name__


def _label(layer, nodes, opts):
    """The lines of a box: (text, style) with style 'title' or 'detail'."""
    kind = _kind_name(layer)
    lines = [(f"{layer.name} ({kind})" if opts["show_layer_names"] else kind, "title")]
    if opts["show_layer_activations"]:
        act = getattr(layer, "activation", None)
        if callable(act):
            from plexus.activations import serialize
            lines.append((f"activation: {serialize(act)}", "detail"))
    if opts["show_shapes"]:
        lines.extend((s, "detail") for s in _shape_lines(layer, nodes))
    if opts["show_dtype"]:
        dtypes = sorted({t.dtype for n in nodes for t in n.output_tensors}) or [layer.dtype]
        lines.append((f"dtype: {', '.join(dtypes)}", "detail"))
    if opts["show_trainable"]:
        lines.append(("trainable" if layer.trainable else "frozen (not trainable)", "detail"))
    return lines


def build_graph(model, opts, prefix=""):
    """The drawable Graph of `model`; nested graph models become clusters when expanding."""
    relevant = {id(n) for nodes in model._nodes_by_depth.values() for n in nodes}
    graph = Graph(model, model.name)
    keys = {}
    output_layers = {id(t.node.layer) for t in model.outputs}
    # Draw in the order the code called the layers: branches then read left to right as written.
    step_of = {id(step.node): i for i, step in enumerate(getattr(model, "_steps", ()))}
    first_input = {id(t.node.layer): i for i, t in enumerate(model.inputs)}

    def call_order(layer):
        if id(layer) in first_input:
            return (0, first_input[id(layer)])
        return (1, min((step_of.get(id(n), 1 << 30) for n in layer._inbound_nodes
                        if id(n) in relevant), default=1 << 30))

    ordered_layers = sorted(model._graph_layers, key=call_order)
    for layer in ordered_layers:
        key = prefix + layer.name
        keys[id(layer)] = key
        nodes = [n for n in layer._inbound_nodes if id(n) in relevant or n.is_input]
        if isinstance(layer, InputLayer):
            kind = "input"
        elif _is_graph_model(layer):
            kind = "model"
        else:
            kind = "layer"
        graph.boxes.append(Box(key, layer, _label(layer, nodes, opts), kind,
                               is_output=id(layer) in output_layers, frozen=not layer.trainable))
        if kind == "model" and opts["expand_nested"]:
            graph.clusters[key] = build_graph(layer, opts, prefix=key + "/")
    calls = [node for layer in ordered_layers for node in layer._inbound_nodes
             if id(node) in relevant]
    for node in sorted(calls, key=lambda n: step_of.get(id(n), -1)):  # stable for inputs
        layer = node.layer
        for pos, t in enumerate(node.input_tensors):
            src = keys[id(t.node.layer)]
            dst = keys[id(layer)]
            out_port = t.index if src in graph.clusters else None
            in_port = pos if dst in graph.clusters else None
            graph.edges.append((src, dst, out_port, in_port))
    for i, t in enumerate(model.inputs):
        graph.entry[i] = keys[id(t.node.layer)]
    for i, t in enumerate(model.outputs):
        src = keys[id(t.node.layer)]
        graph.exit[i] = (src, t.index if src in graph.clusters else None)
    return graph


def resolve_target(graph, key, in_port):
    """The leaf box an edge entering `key` (at `in_port` when `key` is a cluster) reaches."""
    while in_port is not None:
        inner = graph.clusters[key]
        graph, key, in_port = inner, inner.entry[in_port], None
    return key


def resolve_source(graph, key, out_port):
    """The leaf box an edge leaving `key` (from `out_port` when `key` is a cluster) starts at."""
    while out_port is not None:
        inner = graph.clusters[key]
        graph = inner
        key, out_port = inner.exit[out_port]
    return key


def flatten(graph):
    """All leaf boxes, the cluster tree `[(key, title, [children...])]`, and the edges between
    leaf boxes `(source_key, target_key)`, one per connection."""
    boxes, edges, tree = [], [], []
    for box in graph.boxes:
        if box.key in graph.clusters:
            inner = graph.clusters[box.key]
            sub_boxes, sub_edges, sub_tree = flatten(inner)
            boxes.extend(sub_boxes)
            edges.extend(sub_edges)
            tree.append((box.key, inner.title, [b.key for b in sub_boxes], sub_tree))
        else:
            boxes.append(box)
    for src, dst, out_port, in_port in graph.edges:
        edges.append((resolve_source(graph, src, out_port), resolve_target(graph, dst, in_port)))
    return boxes, edges, tree
