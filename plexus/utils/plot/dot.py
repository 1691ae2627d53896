"""DOT text of a model, for users who have Graphviz and want to render it themselves."""
from plexus.utils.plot.graph import build_graph, check_drawable, flatten
from plexus.utils.plot.svg import CLUSTER, box_colors


def _q(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cluster_lines(tree, ids, boxes, indent):
    lines, inside = [], set()
    for key, title, members, sub_tree in tree:
        lines.append(f"{indent}subgraph {_q('cluster_' + key)} {{")
        lines.append(f"{indent}  label={_q(title)}; style=\"dashed,rounded,filled\"; "
                     f"color={_q(CLUSTER[1])}; fillcolor={_q(CLUSTER[0])};")
        sub_lines, sub_inside = _cluster_lines(sub_tree, ids, boxes, indent + "  ")
        lines += sub_lines
        for m in members:
            if m not in sub_inside:
                lines.append(f"{indent}  {ids[m]};")
        inside |= set(members)
        lines.append(f"{indent}}}")
    return lines, inside


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                 expand_nested=False, dpi=200, subgraph=False, show_layer_activations=False,
                 show_trainable=False):
    """The model's graph in the DOT language of Graphviz, as a string.

    One node per layer (a shared layer once, with one edge per call), one edge per connection.
    With `expand_nested`, nested models become `cluster_` subgraphs holding their layers.

    Args: as `plot_model`; `subgraph=True` returns a `subgraph cluster_<name>` block instead of
        a whole `digraph`.

    Example:
        >>> open("model.dot", "w").write(plexus.utils.model_to_dot(model, show_shapes=True))
        $ dot -Tpng model.dot -o model.png
    """
    check_drawable(model)
    opts = dict(show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                expand_nested=expand_nested, show_layer_activations=show_layer_activations,
                show_trainable=show_trainable)
    boxes, edges, tree = flatten(build_graph(model, opts))
    ids = {b.key: _q(b.key) for b in boxes}
    head = (f"subgraph {_q('cluster_' + model.name)} {{" if subgraph
            else f"digraph {_q(model.name)} {{")
    lines = [head]
    if subgraph:
        lines.append(f"  label={_q(model.name)};")
    else:
        lines.append(f"  graph [rankdir={_q(rankdir)}, dpi={int(dpi)}, concentrate=false];")
    lines.append('  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];')
    lines.append("  edge [arrowsize=0.7];")
    for box in boxes:
        fill, stroke = box_colors(box)
        label = "\\n".join(t.replace("\\", "\\\\").replace('"', '\\"') for t, _ in box.lines)
        lines.append(f'  {ids[box.key]} [label="{label}", fillcolor={_q(fill)}, '
                     f'color={_q(stroke)}];')
    lines += _cluster_lines(tree, ids, boxes, "  ")[0]
    for src, dst in edges:
        lines.append(f"  {ids[src]} -> {ids[dst]};")
    lines.append("}")
    return "\n".join(lines) + "\n"
