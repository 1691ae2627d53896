"""A layered (Sugiyama-style) drawing of a directed acyclic graph, top to bottom.

Four steps: ranks by longest path (sources pulled down next to their first consumer), dummy
nodes on edges that span several ranks, crossing reduction by barycenter sweeps, and x
coordinates by weighted averaging of neighbours under the ordering constraints (solved exactly
per rank with the pool-adjacent-violators algorithm). Edges become point lists through their
dummy nodes, so long edges such as residual connections run in their own lane.
"""
from bisect import bisect_right, insort

NODESEP = 18.0  # horizontal gap between boxes
MIN_RANKSEP = 26.0  # vertical gap between ranks
DUMMY_W = 6.0  # width reserved for an edge passing through a rank


class Layout:
    """Result: box centres `xs`, `ys`, one point list per edge in `paths`, and the size."""

    def __init__(self, xs, ys, paths, width, height):
        self.xs, self.ys, self.paths = xs, ys, paths
        self.width, self.height = width, height


def _back_edges(n, edges):
    """Indices of edges to reverse so the graph has no cycle (a layer shared at several depths
    makes one): depth-first search in the given order, reversing edges into the current path."""
    succs = [[] for _ in range(n)]
    for i, (u, v) in enumerate(edges):
        succs[u].append((v, i))
    state, back = [0] * n, set()  # 0 new, 1 on the path, 2 done
    for root in range(n):
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(succs[root]))]
        while stack:
            u, it = stack[-1]
            for v, i in it:
                if state[v] == 1:
                    back.add(i)
                elif state[v] == 0:
                    state[v] = 1
                    stack.append((v, iter(succs[v])))
                    break
            else:
                state[u] = 2
                stack.pop()
    return back


def _ranks(n, edges, top, bottom):
    preds, succs = [[] for _ in range(n)], [[] for _ in range(n)]
    for u, v in edges:
        succs[u].append(v)
        preds[v].append(u)
    indeg = [len(p) for p in preds]
    order, queue = [], [v for v in range(n) if indeg[v] == 0]
    while queue:
        u = queue.pop(0)
        order.append(u)
        for v in succs[u]:
            indeg[v] -= 1
            if indeg[v] == 0:
                queue.append(v)
    if len(order) != n:
        raise ValueError("The model graph has a cycle; it cannot be drawn in layers.")
    rank = [0] * n
    for u in order:
        for v in succs[u]:
            rank[v] = max(rank[v], rank[u] + 1)
    # A source waits next to its first consumer instead of sitting at the top with a long edge.
    for u in order:
        if not preds[u] and succs[u] and u not in top:
            rank[u] = min(rank[v] for v in succs[u]) - 1
    low = min(rank, default=0)
    rank = [r - low for r in rank]
    if bottom:
        last = max((rank[v] for v in range(n) if v not in bottom), default=0) + 1
        for v in bottom:
            rank[v] = last
    return rank, order


def _crossings(upper_pos, lower_pos, segs):
    pairs = sorted((upper_pos[u], lower_pos[v]) for u, v in segs)
    seen, count = [], 0
    for _, b in pairs:
        count += len(seen) - bisect_right(seen, b)
        insort(seen, b)
    return count


def _order(layers, up, down, segs_between, rounds):
    """Barycenter sweeps; returns the orderings with the fewest crossings seen."""
    pos = {v: i for layer in layers for i, v in enumerate(layer)}

    def total():
        return sum(_crossings(pos, pos, segs_between[r]) for r in range(len(layers) - 1))

    def sweep(rank_ids, nbrs):
        for r in rank_ids:
            layer = layers[r]
            keyed = []
            for i, v in enumerate(layer):
                ns = nbrs[v]
                keyed.append((sum(pos[u] for u in ns) / len(ns) if ns else pos[v], i, v))
            keyed.sort()
            layers[r] = [v for _, _, v in keyed]
            for i, v in enumerate(layers[r]):
                pos[v] = i

    best, best_layers = total(), [list(l) for l in layers]
    for _ in range(rounds):
        if best == 0:
            break
        sweep(range(1, len(layers)), up)
        sweep(range(len(layers) - 2, -1, -1), down)
        c = total()
        if c < best:
            best, best_layers = c, [list(l) for l in layers]
    return best_layers


def _pava(desired, weights, gaps):
    """Positions closest to `desired` (weighted least squares) keeping consecutive gaps."""
    offsets = [0.0]
    for g in gaps:
        offsets.append(offsets[-1] + g)
    blocks = []  # [sum_w, sum_wt, count]
    for d, w, o in zip(desired, weights, offsets):
        blocks.append([w, w * (d - o), 1])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][0] > blocks[-1][1] / blocks[-1][0]:
            w2, s2, c2 = blocks.pop()
            blocks[-1][0] += w2
            blocks[-1][1] += s2
            blocks[-1][2] += c2
    out = []
    for w, s, c in blocks:
        out.extend([s / w] * c)
    return [y + o for y, o in zip(out, offsets)]


def _coordinates(layers, widths, is_dummy, up, down, rounds=10):
    """x of every node: each rank pulled towards its neighbours, order and gaps kept."""
    x = {}
    gaps_of = []
    for layer in layers:
        gaps = []
        for a, b in zip(layer, layer[1:]):
            sep = NODESEP / 2 if (is_dummy[a] or is_dummy[b]) else NODESEP
            gaps.append((widths[a] + widths[b]) / 2 + sep)
        gaps_of.append(gaps)
        cur = -sum(gaps) / 2
        for i, v in enumerate(layer):
            x[v] = cur
            cur += gaps[i] if i < len(gaps) else 0

    def weight(u, v):
        # Straight lines read best: chains of dummies (long edges) and one-to-one links (a
        # plain sequence of layers) pull hardest.
        if is_dummy[u] and is_dummy[v]:
            return 8.0
        if (down[u] == [v] and up[v] == [u]) or (up[u] == [v] and down[v] == [u]):
            return 8.0 if not (is_dummy[u] or is_dummy[v]) else 4.0
        return 2.0 if is_dummy[u] or is_dummy[v] else 1.0

    def place(r, nbr_sets):
        layer = layers[r]
        desired, ws = [], []
        for v in layer:
            tot = sw = 0.0
            for nbrs in nbr_sets:
                for u in nbrs[v]:
                    w = weight(u, v)
                    tot += w * x[u]
                    sw += w
            desired.append(tot / sw if sw else x[v])
            ws.append(sw or 0.1)
        for v, xv in zip(layer, _pava(desired, ws, gaps_of[r])):
            x[v] = xv

    n = len(layers)
    for _ in range(rounds):
        for r in range(1, n):
            place(r, (up,))
        for r in range(n - 2, -1, -1):
            place(r, (down,))
    for _ in range(2):
        for r in range(n):
            place(r, (up, down))
    _straighten(layers, x, gaps_of, up, down)
    return x


def _straighten(layers, x, gaps_of, up, down):
    """Put each chain of one-to-one links (a plain run of layers, a long edge) on one vertical
    line where its neighbours leave room; averaging alone would draw such chains as stairs."""
    where = {v: (r, i) for r, layer in enumerate(layers) for i, v in enumerate(layer)}
    linked = lambda a, b: down[a] == [b] and up[b] == [a]  # noqa: E731
    for head in list(x):
        if up[head] and linked(up[head][0], head):
            continue
        chain = [head]
        while down[chain[-1]] and linked(chain[-1], down[chain[-1]][0]):
            chain.append(down[chain[-1]][0])
        if len(chain) < 2:
            continue
        # Split the chain where its neighbours leave no common room; align each piece.
        piece, lo, hi = [], float("-inf"), float("inf")
        for v in chain + [None]:
            if v is not None:
                r, i = where[v]
                v_lo = x[layers[r][i - 1]] + gaps_of[r][i - 1] if i > 0 else float("-inf")
                v_hi = (x[layers[r][i + 1]] - gaps_of[r][i] if i + 1 < len(layers[r])
                        else float("inf"))
                if max(lo, v_lo) <= min(hi, v_hi) + 1e-6:
                    piece.append(v)
                    lo, hi = max(lo, v_lo), min(hi, v_hi)
                    continue
            _align(piece, lo, hi, x)
            if v is not None:
                piece, lo, hi = [v], v_lo, v_hi


def _align(piece, lo, hi, x):
    """Move the nodes of `piece` to one x: their median, kept within [lo, hi]."""
    if len(piece) > 1:
        target = min(max(sorted(x[u] for u in piece)[len(piece) // 2], lo), hi)
        for u in piece:
            x[u] = target


def layout(widths, heights, edges, top=(), bottom=(), rounds=None):
    """Lay out boxes of the given sizes joined by `edges` (pairs of box indices).

    Args:
        widths, heights: box sizes in points.
        edges: `(u, v)` pairs; several identical pairs are drawn side by side.
        top, bottom: boxes pinned to the first and the last rank (cluster ports).
        rounds: crossing-reduction rounds (default: more for small graphs).

    Returns:
        A `Layout`; `paths[i]` runs from box `u` to box `v` (bottom to top, except for edges
        reversed to break a cycle, which run upwards, and loops, drawn on the box's side).
    """
    n = len(widths)
    top, bottom = set(top), set(bottom)
    loops = {i for i, (u, v) in enumerate(edges) if u == v}
    back = _back_edges(n, [e for i, e in enumerate(edges) if i not in loops])
    kept = [i for i in range(len(edges)) if i not in loops]
    flipped = {kept[j] for j in back}
    all_edges = edges
    edges = [(v, u) if i in flipped else (u, v) for i, (u, v) in enumerate(all_edges)
             if i not in loops]
    rank, _ = _ranks(n, edges, top, bottom)
    # Dummy nodes: one per rank crossed by a long edge.
    widths, is_dummy, node_rank = list(widths), [False] * n, list(rank)
    chains, segs = [], []
    for u, v in edges:
        chain = [u]
        for r in range(rank[u] + 1, rank[v]):
            d = len(widths)
            widths.append(DUMMY_W)
            is_dummy.append(True)
            node_rank.append(r)
            chain.append(d)
        chain.append(v)
        chains.append(chain)
        segs.extend(zip(chain, chain[1:]))
    total = len(widths)
    up, down = [[] for _ in range(total)], [[] for _ in range(total)]
    for a, b in segs:
        down[a].append(b)
        up[b].append(a)
    n_ranks = max(node_rank, default=-1) + 1
    layers = [[] for _ in range(n_ranks)]
    # Initial order: depth-first from the sources, so branches start grouped.
    seen = set()

    def visit(v):
        stack = [v]
        while stack:
            w = stack.pop()
            if w in seen:
                continue
            seen.add(w)
            layers[node_rank[w]].append(w)
            stack.extend(reversed(down[w]))

    for v in range(n):
        if not up[v]:
            visit(v)
    for v in range(total):
        visit(v)
    segs_between = [[] for _ in range(n_ranks)]
    for a, b in segs:
        segs_between[node_rank[a]].append((a, b))
    if rounds is None:
        rounds = 24 if total < 200 else 8
    layers = _order(layers, up, down, segs_between, rounds)
    x = _coordinates(layers, widths, is_dummy, up, down)
    left = min((x[v] - widths[v] / 2 for v in range(total)), default=0.0)
    x = [x[v] - left for v in range(total)]
    # y: each rank is a band as tall as its tallest box; the gap grows with edge slant.
    band = [0.0] * n_ranks
    for v in range(n):
        band[rank[v]] = max(band[rank[v]], heights[v])
    y_top, cur = [], 0.0
    for r in range(n_ranks):
        y_top.append(cur)
        slant = max((abs(x[a] - x[b]) for a, b in segs_between[r]), default=0.0)
        cur += band[r] + min(60.0, MIN_RANKSEP + 0.08 * slant)
    ys = [y_top[rank[v]] + band[rank[v]] / 2 for v in range(n)]
    laid = iter(chains)
    paths = []
    for i, (u, v) in enumerate(all_edges):
        if i in loops:  # a layer fed its own output: a loop on the box's right side
            xr, yb, yt = x[u] + widths[u] / 2 - 8, ys[u] + heights[u] / 2, ys[u] - heights[u] / 2
            paths.append([(xr, yb), (xr + 22, yb + 8), (xr + 22, yt - 8), (xr, yt)])
            continue
        chain = next(laid)
        a, b = chain[0], chain[-1]
        pts = [(x[a], ys[a] + heights[a] / 2)]
        for d in chain[1:-1]:
            r = node_rank[d]
            pts += [(x[d], y_top[r]), (x[d], y_top[r] + band[r])]
        pts.append((x[b], ys[b] - heights[b] / 2))
        paths.append(pts[::-1] if i in flipped else pts)
    width = max((x[v] + widths[v] / 2 for v in range(total)), default=0.0)
    height = max((ys[v] + heights[v] / 2 for v in range(n)), default=0.0)
    return Layout(x[:n], ys, paths, width, height)
