"""`model.summary()`: the layer table Keras prints."""

_BREAKS = ("),", "],", "},", "',")


def _fmt_shape(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _output_shape_text(layer, nodes):
    texts = []
    for node in nodes:
        shapes = [_fmt_shape(t.shape) for t in node.output_tensors]
        texts.append(shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]")
    if not texts:
        return "?"
    return texts[0] if len(set(texts)) == 1 else "multiple"


def _is_sequential_like(model):
    from plexus.models.functional import Functional
    from plexus.models.sequential import Sequential
    if isinstance(model, Sequential) or not isinstance(model, Functional):
        return True
    nodes = []
    for depth_nodes in model._nodes_by_depth.values():
        if len(depth_nodes) > 1 or (depth_nodes and len(depth_nodes[0].input_tensors) > 1):
            return False
        nodes += depth_nodes
    ids = {id(n) for n in nodes}
    for layer in getattr(model, "operations", model.layers):
        if sum(1 for n in layer._inbound_nodes if id(n) in ids) > 1:
            return False
    return True


class _Printer:
    def __init__(self, positions, print_fn):
        self.positions, self.print_fn = positions, print_fn

    def row(self, fields, level=0):
        """Print one table row, wrapping each column within its width (breaking after `),`)."""
        left = [list(f) if isinstance(f, list) else [str(f)] for f in fields]
        left = [[s for s in col if s != ""] or [""] for col in left]
        first = True
        while first or any(col != [""] and col for col in left):
            first = False
            line = ""
            for i, col in enumerate(left):
                start = self.positions[i - 1] if i else 0
                end = self.positions[i]
                space = 2 if i != len(self.positions) - 1 else 0
                width = end - start - space - (level if i == 0 else 0)
                text = col[0] if col else ""
                piece = text[:width]
                cuts = [piece.find(b) + len(b) for b in _BREAKS if piece.find(b) >= 0]
                if cuts and len(text) > width:
                    piece = piece[:min(cuts)]
                rest = text[len(piece):].lstrip()
                if col:
                    if rest:
                        col[0] = rest
                    else:
                        col.pop(0)
                if not col:
                    col.append("")
                if i == 0:
                    line += "|" * level + " "
                line += piece
                line += " " * max(0, end - len(line))
            self.print_fn(line.rstrip() if level == 0 else line[:self.positions[-1]] + "|" * level)


def _relevant_nodes(model):
    from plexus.models.functional import Functional
    if not isinstance(model, Functional):
        return None
    return {id(n) for nodes in model._nodes_by_depth.values() for n in nodes}


def _rows(model, printer, sequential_like, expand_nested, show_trainable, level, layer_range):
    from plexus.models.functional import Functional
    relevant = _relevant_nodes(model)
    layers = getattr(model, "operations", model.layers)
    if layer_range is not None:
        names = [l.name for l in layers]
        start, end = layer_range
        if start not in names or end not in names:
            raise ValueError(f"layer_range {layer_range} must name two layers of the model: {names}.")
        layers = layers[names.index(start):names.index(end) + 1]
    for i, layer in enumerate(layers):
        nodes = [n for n in layer._inbound_nodes if relevant is None or id(n) in relevant]
        kind = type(layer).__name__
        name = f"{layer.name} ({kind})"
        shape = _output_shape_text(layer, nodes)
        params = layer.count_params() if layer.built else "0 (unbuilt)"
        fields = [name, shape, params]
        if not sequential_like:
            conns = []
            for node in nodes:
                for t in node.input_tensors:
                    conns.append(f"{t.node.layer.name}[{t.node.index}][{t.index}]")
            fields.append(conns or [""])
        if show_trainable:
            fields.append("Y" if layer.trainable else "N")
        printer.row(fields, level)
        if expand_nested and isinstance(layer, Functional) and layer.built:
            width = printer.positions[-1]
            printer.print_fn("|" * (level + 1) + "¯" * (width - 2 * (level + 1)) + "|" * (level + 1))
            _rows(layer, printer, _is_sequential_like(layer), True, show_trainable, level + 1, None)
            printer.print_fn("¯" * width)
        if i != len(layers) - 1:
            printer.print_fn("|" * level + "_" * (printer.positions[-1] - 2 * level) + "|" * level
                             if level else "_" * printer.positions[-1])


def _count(weights):
    seen, total = set(), 0
    for w in weights:
        if id(w) not in seen:
            seen.add(id(w))
            total += w.numel()
    return total


def print_summary(model, line_length=None, positions=None, print_fn=None, expand_nested=False,
                  show_trainable=False, layer_range=None):
    if not model.built:
        raise ValueError(
            f"Model {model.name!r} has not been built yet, so its layers have no shapes to show. "
            "Give the first layer an `input_shape`, start with an `Input`, call `model.build("
            "input_shape)`, or call the model on a batch of data first."
        )
    print_fn = print_fn or (lambda line, **kw: print(line))
    sequential_like = _is_sequential_like(model)
    if sequential_like:
        line_length = line_length or 65
        positions = positions or [0.45, 0.85, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #"]
    else:
        line_length = line_length or 98
        positions = positions or [0.33, 0.55, 0.67, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    if show_trainable:
        line_length += 11
        positions = list(positions) + [line_length]
        header.append("Trainable")
    printer = _Printer(positions, print_fn)
    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    printer.row(header)
    print_fn("=" * line_length)
    _rows(model, printer, sequential_like, expand_nested, show_trainable, 0, layer_range)
    print_fn("=" * line_length)
    total = _count(model.weights)
    trainable = _count(model.trainable_weights)
    print_fn(f"Total params: {total:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {total - trainable:,}")
    print_fn("_" * line_length)
