"""Write a Scene as PNG or PDF with matplotlib (the optional `plot` extra), no system packages."""
import warnings

from plexus.utils.plot.scene import FONT, text_width
from plexus.utils.plot.svg import CLUSTER, EDGE, arrow_head, box_colors, shorten, text_lines

MAX_PIXELS = 40e6  # beyond this a PNG gets slow to write and heavy to open
MAX_SIDE = 32000


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "plot_model needs matplotlib to write PNG or PDF files. Install it with "
            "`pip install plexus[plot]` (or `pip install matplotlib`), or save to a '.svg' "
            "file, which needs nothing else."
        ) from None
    return matplotlib


def _png_dpi(scene, dpi):
    """The requested dpi, lowered (with a warning) when the image would be huge."""
    w_in, h_in = scene.width / 72.0, scene.height / 72.0
    limit = min((MAX_PIXELS / (w_in * h_in)) ** 0.5, MAX_SIDE / max(w_in, h_in))
    if dpi > limit:
        warnings.warn(f"plot_model: the drawing is {w_in:.0f}x{h_in:.0f} inches; PNG dpi lowered "
                      f"from {dpi} to {int(limit)} to keep the image under {MAX_PIXELS / 1e6:.0f} "
                      "megapixels. Save as '.svg' or '.pdf' for a drawing of any size.",
                      stacklevel=3)
        dpi = int(limit)
    return max(dpi, 1)


_GLYPHS = {}


def _glyph(ch, bold):
    """Outline of one character at size 1, cached: (vertices, codes) or None for blanks."""
    key = (ch, bold)
    if key not in _GLYPHS:
        from matplotlib.font_manager import FontProperties
        from matplotlib.textpath import TextPath
        glyph = None
        if not ch.isspace():
            try:
                path = TextPath((0, 0), ch, size=1.0, prop=FontProperties(
                    family="DejaVu Sans", weight="bold" if bold else "normal"))
                if len(path.vertices):
                    glyph = (path.vertices.copy(), path.codes.copy())
            except (ValueError, RuntimeError, AttributeError):
                glyph = None
        _GLYPHS[key] = glyph
    return _GLYPHS[key]


def _text_path(pieces):
    """One compound path for many strings: `pieces` holds (x_centre, y_baseline, text, style).

    Drawing cached glyph outlines is many times faster than laying out hundreds of text
    objects, which matters for big models; advances come from the same width table as the
    layout, so text is centred exactly where the boxes expect it."""
    import numpy as np
    from matplotlib.path import Path
    verts, codes = [], []
    for x, y, text, style in pieces:
        size, bold = FONT[style]
        cur = x - text_width(text, style) / 2
        for ch in text:
            g = _glyph(ch, bold)
            if g is not None:
                v = g[0] * size
                verts.append(np.column_stack((v[:, 0] + cur, y - v[:, 1])))
                codes.append(g[1])
            cur += text_width(ch, style)
    if not verts:
        return None
    return Path(np.concatenate(verts), np.concatenate(codes))


def write(scene, path, fmt, dpi):
    """Render `scene` into `path` as 'png' or 'pdf'."""
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PatchCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch, PathPatch, Polygon
    from matplotlib.path import Path

    W, H = scene.width, scene.height
    fig = Figure(figsize=(W / 72.0, H / 72.0))
    if fmt == "pdf":
        from matplotlib.backends.backend_pdf import FigureCanvasPdf
        canvas = FigureCanvasPdf(fig)
    else:
        canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, W)
    ax.set_ylim(H, 0)  # y points down, as in the scene
    ax.axis("off")
    for _, x0, y0, w, h in scene.clusters:
        ax.add_artist(FancyBboxPatch((x0, y0), w, h, boxstyle="round,pad=0,rounding_size=6",
                                    facecolor=CLUSTER[0], edgecolor=CLUSTER[1], linestyle="--",
                                    linewidth=1.0))
    lines, heads = [], []
    for _, _, start, segs in scene.edges:
        verts, codes = [start], [Path.MOVETO]
        for seg in shorten(start, segs):
            if seg[0] == "L":
                verts.append(seg[1])
                codes.append(Path.LINETO)
            else:
                verts += list(seg[1:])
                codes += [Path.CURVE4] * 3
        lines.append(PathPatch(Path(verts, codes)))
        heads.append(Polygon(arrow_head(start, segs), closed=True))
    ax.add_collection(PatchCollection(lines, facecolor="none", edgecolor=EDGE, linewidth=1.1),
                      autolim=False)
    ax.add_collection(PatchCollection(heads, facecolor=EDGE, edgecolor="none"), autolim=False)
    rects, fills, strokes = [], [], []
    for box, x0, y0, w, h in scene.boxes:
        fill, stroke = box_colors(box)
        rects.append(FancyBboxPatch((x0, y0), w, h, boxstyle="round,pad=0,rounding_size=4"))
        fills.append(fill)
        strokes.append(stroke)
    ax.add_collection(PatchCollection(rects, facecolors=fills, edgecolors=strokes, linewidth=1.2),
                      autolim=False)
    titles, details = [], []
    for title, x0, y0, w, _ in scene.clusters:
        size = FONT["cluster"][0]
        x = x0 + 6 + text_width(title, "cluster") / 2
        titles.append((x, y0 + 4 + size, title, "cluster"))
    for box, x0, y0, w, h in scene.boxes:
        for piece in text_lines(box, x0, y0, w, h):
            (titles if piece[3] == "title" else details).append(piece)
    for pieces, color in ((titles, "#0f172a"), (details, "#334155")):
        text = _text_path(pieces)
        if text is not None:
            ax.add_artist(PathPatch(text, facecolor=color, edgecolor="none"))  # no limit updates
    if fmt == "pdf":
        fig.savefig(path, format="pdf")
        return
    _save_png(canvas, path, _png_dpi(scene, dpi), fig)


def _save_png(canvas, path, dpi, fig):
    """RGB PNG with fast compression: drawings are mostly flat colour, so size stays small."""
    from PIL import Image
    fig.set_dpi(dpi)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw",
                             "RGBA", 0, 1).convert("RGB")
    image.save(path, format="PNG", compress_level=1, dpi=(dpi, dpi))
