"""Drawing models: `plot_model` (PNG, SVG, PDF; no Graphviz needed) and `model_to_dot`.

The layout is computed here (layered, Sugiyama-style); SVG is written directly and PNG/PDF go
through matplotlib, installed with `pip install plexus[plot]`.
"""
import os

from plexus.utils.plot.dot import model_to_dot
from plexus.utils.plot.graph import check_drawable
from plexus.utils.plot.scene import build_scene
from plexus.utils.plot.svg import to_svg

FORMATS = ("png", "svg", "pdf")


class ModelPlot:
    """A drawn model that displays itself in a notebook (used when IPython is not installed)."""

    def __init__(self, path, fmt, svg_text):
        self.path, self.format, self._svg = path, fmt, svg_text

    def _repr_svg_(self):
        return self._svg

    def _repr_png_(self):
        if self.format != "png":
            return None
        with open(self.path, "rb") as f:
            return f.read()

    def __repr__(self):
        return f"<ModelPlot {self.path!r}>"


def _display(path, fmt, svg_text):
    try:
        from IPython import display
    except ImportError:
        return ModelPlot(path, fmt, svg_text)
    if fmt == "png":
        return display.Image(filename=path)
    return display.SVG(data=svg_text)


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
               show_layer_names=True, rankdir="TB", expand_nested=False, dpi=200,
               show_layer_activations=False, show_trainable=False):
    """Draw a model's graph of layers into a PNG, SVG or PDF file.

    Every layer is a box, every connection an arrow; a layer called several times (a shared
    layer) is drawn once with several arrows; nested models are one box, or a dashed cluster of
    their own layers with `expand_nested=True`. SVG needs no extra package; PNG and PDF need
    matplotlib (`pip install plexus[plot]`). No Graphviz is involved.

    Args:
        model: a functional or built Sequential model.
        to_file: the file to write; its extension (`.png`, `.svg`, `.pdf`) picks the format.
        show_shapes: print each layer's input and output shapes.
        show_dtype: print each layer's output dtype.
        show_layer_names: print layer names (else only class names).
        rankdir: `"TB"` (top to bottom), `"LR"` (left to right), `"BT"` or `"RL"`.
        expand_nested: draw nested models as clusters of their layers.
        dpi: resolution of a PNG file.
        show_layer_activations: print the activation of layers that have one.
        show_trainable: mark each layer trainable or frozen (frozen layers are grey).

    Returns:
        An object that displays the drawing inline in a notebook (an `IPython.display.Image`
        or `SVG` when IPython is available).

    Example:
        >>> plexus.utils.plot_model(model, "model.png", show_shapes=True)
    """
    check_drawable(model)
    path = os.fspath(to_file)
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError(
            f"plot_model cannot write {path!r}: unknown file extension "
            f"{('.' + ext) if ext else '(none)'}. "
            "Use a file name ending in .png, .svg or .pdf."
        )
    opts = dict(show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                rankdir=rankdir, expand_nested=expand_nested,
                show_layer_activations=show_layer_activations, show_trainable=show_trainable)
    scene = build_scene(model, opts)
    svg_text = to_svg(scene)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    if ext == "svg":
        with open(path, "w", encoding="utf-8") as f:
            f.write(svg_text)
    else:
        from plexus.utils.plot import raster
        raster.write(scene, path, ext, dpi)
    return _display(path, ext, svg_text)


__all__ = ["plot_model", "model_to_dot", "ModelPlot"]
