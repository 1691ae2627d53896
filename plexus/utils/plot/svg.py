"""Write a Scene as SVG text (no dependency)."""
from xml.sax.saxutils import escape, quoteattr

from plexus.utils.plot.scene import FONT, LINE_H

# (fill, stroke) per kind of box.
COLORS = {
    "input": ("#dbeafe", "#2563eb"),
    "layer": ("#f8fafc", "#475569"),
    "model": ("#ede9fe", "#7c3aed"),
    "output": ("#dcfce7", "#15803d"),
    "frozen": ("#e5e7eb", "#6b7280"),
}
EDGE = "#334155"
CLUSTER = ("#faf5ff", "#7c3aed")
ARROW_LEN, ARROW_HALF = 7.0, 3.2


def box_colors(box):
    if box.frozen and box.kind != "input":
        return COLORS["frozen"]
    if box.kind == "layer" and box.is_output:
        return COLORS["output"]
    return COLORS[box.kind]


def arrow_head(start, segs):
    """The tip and the two base corners of the arrow at the end of an edge."""
    last = segs[-1]
    tip = last[-1]
    prev = last[2] if last[0] == "C" else (segs[-2][-1] if len(segs) > 1 else start)
    dx, dy = tip[0] - prev[0], tip[1] - prev[1]
    norm = (dx * dx + dy * dy) ** 0.5 or 1.0
    ux, uy = dx / norm, dy / norm
    bx, by = tip[0] - ux * ARROW_LEN, tip[1] - uy * ARROW_LEN
    left = (bx - uy * ARROW_HALF, by + ux * ARROW_HALF)
    right = (bx + uy * ARROW_HALF, by - ux * ARROW_HALF)
    return tip, left, right


def shorten(start, segs):
    """The edge path stopping at the arrow's base, so the line does not poke through the tip."""
    tip, a, b = arrow_head(start, segs)
    base = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    last = segs[-1]
    return segs[:-1] + [last[:-1] + (base,)]


def _f(v):
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _path_d(start, segs):
    out = [f"M{_f(start[0])},{_f(start[1])}"]
    for seg in segs:
        pts = " ".join(f"{_f(x)},{_f(y)}" for x, y in seg[1:])
        out.append(f"{seg[0]}{pts}")
    return " ".join(out)


def text_lines(box, x0, y0, w, h):
    """(x, y_baseline, text, style) for each label line, centred in the box."""
    total = sum(LINE_H[s] for _, s in box.lines)
    y = y0 + (h - total) / 2
    out = []
    for text, style in box.lines:
        size = FONT[style][0]
        y += LINE_H[style]
        out.append((x0 + w / 2, y - (LINE_H[style] - size) / 2 - size * 0.18, text, style))
    return out


def to_svg(scene):
    """SVG document text for `scene`."""
    W, H = scene.width, scene.height
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(W)}pt" height="{_f(H)}pt" '
        f'viewBox="0 0 {_f(W)} {_f(H)}" font-family="DejaVu Sans, Verdana, Arial, sans-serif">',
        f"<title>{escape(scene.title)}</title>",
        f'<rect width="{_f(W)}" height="{_f(H)}" fill="white"/>',
    ]
    for title, x0, y0, w, h in scene.clusters:
        out.append(
            f'<g class="cluster"><rect x="{_f(x0)}" y="{_f(y0)}" width="{_f(w)}" '
            f'height="{_f(h)}" rx="6" fill="{CLUSTER[0]}" stroke="{CLUSTER[1]}" '
            f'stroke-dasharray="5,3"/><text x="{_f(x0 + 6)}" y="{_f(y0 + 4 + FONT["cluster"][0])}" '
            f'font-size="{FONT["cluster"][0]}" font-weight="bold" fill="{CLUSTER[1]}">'
            f"{escape(title)}</text></g>")
    for src, dst, start, segs in scene.edges:
        tip, a, b = arrow_head(start, segs)
        out.append(
            f'<g class="edge" data-source={quoteattr(src)} data-target={quoteattr(dst)}>'
            f'<path d="{_path_d(start, shorten(start, segs))}" fill="none" stroke="{EDGE}" '
            f'stroke-width="1.1"/><path d="M{_f(tip[0])},{_f(tip[1])} L{_f(a[0])},{_f(a[1])} '
            f'L{_f(b[0])},{_f(b[1])} Z" fill="{EDGE}"/></g>')
    for box, x0, y0, w, h in scene.boxes:
        fill, stroke = box_colors(box)
        parts = [f'<g class="node" data-name={quoteattr(box.key)}>',
                 f'<rect x="{_f(x0)}" y="{_f(y0)}" width="{_f(w)}" height="{_f(h)}" rx="4" '
                 f'fill="{fill}" stroke="{stroke}" stroke-width="1.2"/>']
        for x, y, text, style in text_lines(box, x0, y0, w, h):
            size, bold = FONT[style]
            weight = ' font-weight="bold"' if bold else ""
            color = "#0f172a" if bold else "#334155"
            parts.append(f'<text x="{_f(x)}" y="{_f(y)}" font-size="{size}"{weight} '
                         f'text-anchor="middle" fill="{color}">{escape(text)}</text>')
        parts.append("</g>")
        out.append("".join(parts))
    out.append("</svg>")
    return "\n".join(out) + "\n"

