"""Geometry of a drawing: box sizes from text, nested clusters, edge curves, rank direction.

Everything is laid out top to bottom first ("abstract" frame); the rank direction is applied at
the end by swapping and mirroring coordinates, so `LR` drawings keep horizontal text.
"""
from plexus.utils.plot.graph import build_graph
from plexus.utils.plot.layout import layout

# Advance widths (per 1000 em) of ASCII 32..126 in DejaVu Sans and DejaVu Sans Bold, the fonts
# the PNG/PDF renderer uses; SVG viewers fall back to similar sans-serif fonts.
_REGULAR = [32, 40, 46, 84, 64, 95, 78, 27, 39, 39, 50, 84, 32, 36, 32, 34, 64, 64, 64, 64, 64,
            64, 64, 64, 64, 64, 34, 34, 84, 84, 84, 53, 100, 68, 69, 70, 77, 63, 58, 77, 75, 29,
            29, 66, 56, 86, 75, 79, 60, 79, 69, 63, 61, 73, 68, 99, 69, 61, 69, 39, 34, 39, 84,
            50, 50, 61, 63, 55, 63, 62, 35, 63, 63, 28, 28, 58, 28, 97, 63, 61, 63, 63, 41, 52,
            39, 63, 59, 82, 59, 59, 52, 64, 34, 64, 84]
_BOLD = [35, 46, 52, 84, 70, 100, 87, 31, 46, 46, 52, 84, 38, 42, 38, 37, 70, 70, 70, 70, 70, 70,
         70, 70, 70, 70, 40, 40, 84, 84, 84, 58, 100, 77, 76, 73, 83, 68, 68, 82, 84, 37, 37, 77,
         64, 100, 84, 85, 73, 85, 77, 72, 68, 81, 77, 110, 77, 72, 73, 46, 37, 46, 84, 50, 50, 67,
         72, 59, 72, 68, 44, 72, 71, 34, 34, 67, 34, 104, 71, 69, 72, 72, 49, 60, 48, 71, 65, 92,
         65, 65, 58, 71, 37, 71, 84]

FONT = {"title": (10.0, True), "detail": (8.5, False), "cluster": (9.0, True)}
LINE_H = {"title": 13.0, "detail": 11.5, "cluster": 12.0}
PAD_X, PAD_Y = 8.0, 5.0
CLUSTER_PAD = 12.0
LR_TITLE_PAD = 24.0
MARGIN = 8.0
RANKDIRS = ("TB", "BT", "LR", "RL")


def text_width(text, style):
    size, bold = FONT[style]
    table = _BOLD if bold else _REGULAR
    units = 0
    for ch in text:
        code = ord(ch)
        units += table[code - 32] if 32 <= code < 127 else (100 if code > 0x2e80 else 84)
    return units * size / 100.0


def box_size(lines):
    w = max(text_width(t, s) for t, s in lines) + 2 * PAD_X
    h = sum(LINE_H[s] for _, s in lines) + 2 * PAD_Y
    return max(w, 40.0), h


class Scene:
    """What a renderer draws, in points, y pointing down.

    `boxes`: `(box, x0, y0, w, h)`; `clusters`: `(title, x0, y0, w, h)`; `edges`:
    `(source_key, target_key, start, segments)` where each segment is `("L", p)` or
    `("C", c1, c2, p)` continuing from the previous point.
    """

    def __init__(self, width, height, boxes, clusters, edges, title):
        self.width, self.height = width, height
        self.boxes, self.clusters, self.edges, self.title = boxes, clusters, edges, title


class _Placed:
    def __init__(self):
        self.width = self.height = 0.0
        self.boxes, self.clusters, self.edges = [], [], []
        self.entry_x, self.exit_x = {}, {}


def _spread(paths, groups, widths):
    """Give the edges meeting one side of a box distinct attach points, ordered by where they
    come from, so parallel edges (a shared layer feeding one merge) stay apart."""
    for (key, _), ends in groups.items():
        k = len(ends)
        if k < 2:
            continue
        span = min(widths[key] * 0.7, (k - 1) * 12.0)
        ends.sort(key=lambda e: paths[e[0]][1 if e[1] == 0 else -2][0])
        for j, (i, end) in enumerate(ends):
            x, y = paths[i][end]
            paths[i][end] = (x - span / 2 + span * j / (k - 1), y)


def _sizes(graph, lr, pad):
    """Box sizes in the abstract frame; expanded clusters are laid out first (recursively)."""
    widths, heights, inner = [], [], {}
    for box in graph.boxes:
        if box.key in graph.clusters:
            sub = _place(graph.clusters[box.key], lr, True)
            inner[box.key] = sub
            w, h = sub.width + pad + CLUSTER_PAD, sub.height
        else:
            w, h = box_size(box.lines)
            if lr:
                w, h = h, w
        widths.append(w)
        heights.append(h)
    return widths, heights, inner


def _add_ports(graph, index, widths, heights, edges, meta):
    """Zero-size port nodes of a cluster: entries on its top rank, exits on its bottom rank."""
    top, bottom = [], []
    for k, key in graph.entry.items():
        top.append(len(widths))
        widths.append(0.0), heights.append(0.0)
        edges.append((top[-1], index[key]))
        meta.append((("entry", k), key, None, None))
    for k, (key, out_port) in graph.exit.items():
        bottom.append(len(widths))
        widths.append(0.0), heights.append(0.0)
        edges.append((index[key], bottom[-1]))
        meta.append((key, ("exit", k), out_port, None))
    return top, bottom


def _attach(paths, meta, lay, index, widths, inner, pad):
    """Edges touching a cluster end at its port; the others spread over their box's side."""
    groups = {}
    for i, (s, d, op, ip) in enumerate(meta):
        if op is not None:
            x, y = paths[i][0]
            left = lay.xs[index[s]] - widths[index[s]] / 2 + pad
            paths[i][0] = (left + inner[s].exit_x[op], y)
        elif not isinstance(s, tuple) and s != d:
            groups.setdefault((s, round(paths[i][0][1], 1)), []).append((i, 0))
        if ip is not None:
            x, y = paths[i][-1]
            left = lay.xs[index[d]] - widths[index[d]] / 2 + pad
            paths[i][-1] = (left + inner[d].entry_x[ip], y)
        elif not isinstance(d, tuple) and s != d:
            groups.setdefault((d, round(paths[i][-1][1], 1)), []).append((i, -1))
    _spread(paths, groups, {k: widths[i] for k, i in index.items()})


def _compose(graph, placed, lay, widths, heights, inner, pad):
    """Place boxes, and clusters with their contents; returns each cluster's moved edges."""
    moved = {}
    for i, box in enumerate(graph.boxes):
        cx, cy = lay.xs[i], lay.ys[i]
        if box.key not in inner:
            placed.boxes.append((box, cx, cy, widths[i], heights[i]))
            continue
        sub = inner[box.key]
        ox, oy = cx - widths[i] / 2 + pad, cy - heights[i] / 2
        placed.clusters.append((graph.clusters[box.key].title, cx - widths[i] / 2, oy,
                                widths[i], heights[i]))
        placed.boxes += [(b, x + ox, y + oy, w, h) for b, x, y, w, h in sub.boxes]
        placed.clusters += [(t, x + ox, y + oy, w, h) for t, x, y, w, h in sub.clusters]
        shift = [(s, d, [(x + ox, y + oy) for x, y in pts]) for s, d, pts in sub.edges]
        moved[box.key] = shift
        placed.edges += [e for e in shift if not isinstance(e[0], tuple)
                         and not isinstance(e[1], tuple)]
    return moved


def _join(meta, paths, moved):
    """Edges between leaf boxes: an edge at a cluster port continues along the inner edge."""
    joined = []
    for (s, d, op, ip), pts in zip(meta, paths):
        if op is not None:
            for s2, d2, p2 in moved[s]:
                if d2 == ("exit", op) and not isinstance(s2, tuple):
                    s, pts = s2, p2 + pts[1:]
                    break
        if ip is not None:
            for s2, d2, p2 in moved[d]:
                if s2 == ("entry", ip) and not isinstance(d2, tuple):
                    d, pts = d2, pts + p2[1:]
                    break
        joined.append((s, d, pts))
    return joined


def _place(graph, lr, ports):
    """Lay out `graph` in the abstract frame; with `ports`, add cluster entry/exit ports."""
    pad = LR_TITLE_PAD if lr else CLUSTER_PAD  # left of the contents: in LR the title's strip
    widths, heights, inner = _sizes(graph, lr, pad)
    index = {box.key: i for i, box in enumerate(graph.boxes)}
    edges = [(index[s], index[d]) for s, d, _, _ in graph.edges]
    meta = list(graph.edges)
    top, bottom = _add_ports(graph, index, widths, heights, edges, meta) if ports else ([], [])
    lay = layout(widths, heights, edges, top=top, bottom=bottom)
    paths = [list(p) for p in lay.paths]
    _attach(paths, meta, lay, index, widths, inner, pad)
    placed = _Placed()
    placed.entry_x = {k: lay.xs[i] for k, i in zip(graph.entry, top)}
    placed.exit_x = {k: lay.xs[i] for k, i in zip(graph.exit, bottom)}
    placed.width, placed.height = lay.width, lay.height
    moved = _compose(graph, placed, lay, widths, heights, inner, pad)
    placed.edges += _join(meta, paths, moved)
    return placed


def _curve(points):
    """Smooth a polyline that runs downward: vertical tangents at every point."""
    pts = [points[0]]
    for p in points[1:]:
        if abs(p[0] - pts[-1][0]) > 1e-6 or abs(p[1] - pts[-1][1]) > 1e-6:
            pts.append(p)
    segs = []
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if abs(x1 - x0) < 0.5:
            segs.append(("L", (x1, y1)))
        else:
            dy = (y1 - y0) / 2
            segs.append(("C", (x0, y0 + dy), (x1, y1 - dy), (x1, y1)))
    return pts[0], segs


def build_scene(model, opts):
    """The Scene for `model` with the plot options in `opts` (a dict of plot_model's flags)."""
    rankdir = opts["rankdir"]
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}; received {rankdir!r}.")
    lr = rankdir in ("LR", "RL")
    placed = _place(build_graph(model, opts), lr, False)
    W, H = placed.width, placed.height

    def tf(p):
        x, y = p
        if rankdir == "BT":
            y = H - y
        elif rankdir == "LR":
            x, y = y, x
        elif rankdir == "RL":
            x, y = H - y, x
        return x + MARGIN, y + MARGIN

    def rect(cx, cy, w, h):
        (ax, ay), (bx, by) = tf((cx - w / 2, cy - h / 2)), tf((cx + w / 2, cy + h / 2))
        return min(ax, bx), min(ay, by), abs(bx - ax), abs(by - ay)

    boxes = [(b,) + rect(x, y, w, h) for b, x, y, w, h in placed.boxes]
    clusters = [(t,) + rect(x0 + w / 2, y0 + h / 2, w, h) for t, x0, y0, w, h in placed.clusters]
    edges = []
    for s, d, pts in placed.edges:
        start, segs = _curve(pts)
        segs = [(kind,) + tuple(tf(p) for p in rest) for kind, *rest in segs]
        edges.append((s, d, tf(start), segs))
    width, height = (H, W) if lr else (W, H)
    return Scene(width + 2 * MARGIN, height + 2 * MARGIN, boxes, clusters, edges, model.name)
