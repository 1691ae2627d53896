"""plot_model / model_to_dot: files written and valid, every layer and connection drawn."""
import importlib.util
import re
import xml.etree.ElementTree as ET

import pytest

import plexus
from plexus import Input, Model, layers
from plexus.utils import model_to_dot, plot_model
from plexus.utils.plot.layout import layout

SVG_NS = "{http://www.w3.org/2000/svg}"


def ticket_model():
    title = Input(shape=(None,), name="title")
    body = Input(shape=(None,), name="body")
    tags = Input(shape=(12,), name="tags")
    t = layers.Embedding(100, 8)(title)
    b = layers.Embedding(100, 8)(body)
    t = layers.Lambda(lambda z: z.mean(1), name="pool_title")(t)
    b = layers.Lambda(lambda z: z.mean(1), name="pool_body")(b)
    x = layers.concatenate([t, b, tags])
    priority = layers.Dense(1, activation="sigmoid", name="priority")(x)
    department = layers.Dense(4, activation="softmax", name="department")(x)
    return Model([title, body, tags], [priority, department])


def siamese_model():
    shared = layers.Dense(8, name="shared")
    left = Input(shape=(4,), name="left")
    right = Input(shape=(4,), name="right")
    merged = layers.concatenate([shared(left), shared(right)], name="merged")
    return Model([left, right], layers.Dense(1, name="out")(merged))


def nested_model():
    inner_in = Input(shape=(4,), name="inner_in")
    h = layers.Dense(6, name="inner_a")(inner_in)
    inner = Model(inner_in, layers.Dense(3, name="inner_b")(h), name="encoder")
    a = Input(shape=(4,), name="a")
    b = Input(shape=(4,), name="b")
    merged = layers.concatenate([inner(a), inner(b)], name="merged")
    return Model([a, b], layers.Dense(1, name="head")(merged))


def connections(model):
    relevant = {id(n) for ns in model._nodes_by_depth.values() for n in ns}
    return [(t.node.layer.name, layer.name) for layer in model.layers
            for node in layer._inbound_nodes if id(node) in relevant
            for t in node.input_tensors]


def svg_graph(path):
    root = ET.parse(path).getroot()
    nodes = [g.get("data-name") for g in root.iter(SVG_NS + "g") if g.get("class") == "node"]
    edges = [(g.get("data-source"), g.get("data-target"))
             for g in root.iter(SVG_NS + "g") if g.get("class") == "edge"]
    texts = " ".join(t.text or "" for t in root.iter(SVG_NS + "text"))
    return nodes, edges, texts


def test_png_svg_pdf_written_and_valid(tmp_path):
    pytest.importorskip("matplotlib")
    model = ticket_model()
    for ext, magic in (("png", b"\x89PNG\r\n\x1a\n"), ("pdf", b"%PDF"), ("svg", b"<?xml")):
        path = tmp_path / f"model.{ext}"
        result = plot_model(model, to_file=str(path), show_shapes=True, dpi=60)
        assert path.read_bytes().startswith(magic), ext
        assert hasattr(result, "_repr_png_") or hasattr(result, "_repr_svg_") \
            or hasattr(result, "_repr_html_")


def test_svg_has_every_layer_and_one_edge_per_connection(tmp_path):
    model = ticket_model()
    path = tmp_path / "m.svg"
    plot_model(model, to_file=str(path), show_shapes=True)
    nodes, edges, texts = svg_graph(path)
    assert sorted(nodes) == sorted(l.name for l in model.layers)
    assert sorted(edges) == sorted(connections(model))
    for layer in model.layers:
        assert layer.name in texts
    assert "(None, 12)" in texts and "(None, 4)" in texts  # shapes are printed


def test_dot_has_every_node_and_edge():
    model = ticket_model()
    dot = model_to_dot(model, show_shapes=True, rankdir="LR")
    assert dot.startswith('digraph "') and dot.rstrip().endswith("}")
    assert 'rankdir="LR"' in dot
    for layer in model.layers:
        assert re.search(rf'^  "{layer.name}" \[label="{layer.name} \(', dot, re.M), layer.name
    edges = re.findall(r'^  "([^"]+)" -> "([^"]+)";$', dot, re.M)
    assert sorted(edges) == sorted(connections(model))


def test_shared_layer_drawn_once_with_two_out_edges(tmp_path):
    model = siamese_model()
    path = tmp_path / "s.svg"
    plot_model(model, to_file=str(path))
    nodes, edges, _ = svg_graph(path)
    assert nodes.count("shared") == 1
    assert [e for e in edges if e[0] == "shared"] == [("shared", "merged")] * 2
    assert sorted(e for e in edges if e[1] == "shared") == [("left", "shared"), ("right", "shared")]
    dot_edges = re.findall(r'"(\w+)" -> "(\w+)"', model_to_dot(model))
    assert dot_edges.count(("shared", "merged")) == 2
    assert len(re.findall(r'^  "shared" \[', model_to_dot(model), re.M)) == 1


def test_shared_layer_at_two_depths_is_drawn(tmp_path):
    """A layer reused deeper in the graph makes a cycle between boxes; it is still drawn."""
    x_in = Input(shape=(4,), name="x")
    shared = layers.Dense(4, name="shared")
    y = layers.Dense(4, name="middle")(shared(x_in))
    out = shared(layers.add([y, x_in], name="residual"))
    model = Model(x_in, out)
    path = tmp_path / "c.svg"
    plot_model(model, to_file=str(path))
    nodes, edges, _ = svg_graph(path)
    assert sorted(edges) == sorted(connections(model))
    assert ("residual", "shared") in edges and ("x", "shared") in edges


def test_nested_model_box_and_expanded(tmp_path):
    model = nested_model()
    path = tmp_path / "box.svg"
    plot_model(model, to_file=str(path))
    nodes, edges, _ = svg_graph(path)
    assert "encoder" in nodes and "inner_a" not in nodes
    assert sorted(edges) == sorted(connections(model))

    path = tmp_path / "expanded.svg"
    plot_model(model, to_file=str(path), expand_nested=True)
    nodes, edges, texts = svg_graph(path)
    assert "encoder" not in nodes
    assert {"encoder/inner_in", "encoder/inner_a", "encoder/inner_b"} <= set(nodes)
    assert sorted(edges) == sorted([
        ("a", "encoder/inner_in"), ("b", "encoder/inner_in"),
        ("encoder/inner_in", "encoder/inner_a"), ("encoder/inner_a", "encoder/inner_b"),
        ("encoder/inner_b", "merged"), ("encoder/inner_b", "merged"), ("merged", "head")])
    root = ET.parse(path).getroot()
    clusters = [g for g in root.iter(SVG_NS + "g") if g.get("class") == "cluster"]
    assert len(clusters) == 1 and "encoder" in texts
    dot = model_to_dot(model, expand_nested=True)
    assert 'subgraph "cluster_encoder"' in dot and '"encoder/inner_b" -> "merged"' in dot


def test_sequential_and_options(tmp_path):
    model = plexus.Sequential([layers.Dense(4, activation="relu", input_shape=(3,)),
                               layers.Dense(2, name="last")])
    model.layers[0].trainable = False
    path = tmp_path / "seq.svg"
    plot_model(model, to_file=str(path), show_shapes=True, show_dtype=True, rankdir="LR",
               show_layer_activations=True, show_trainable=True, show_layer_names=False)
    nodes, edges, texts = svg_graph(path)
    assert len(edges) == 2  # input -> dense -> last
    assert "activation: relu" in texts and "dtype: float32" in texts
    assert "frozen" in texts and "(None, 3) → (None, 4)" in texts
    assert "dense (Dense)" not in texts and "Dense" in texts


def _box_corner(path, name):
    root = ET.parse(path).getroot()
    for g in root.iter(SVG_NS + "g"):
        if g.get("data-name") == name:
            rect = g.find(SVG_NS + "rect")
            return float(rect.get("x")), float(rect.get("y"))
    raise AssertionError(name)


def test_rankdir_changes_orientation(tmp_path):
    model = siamese_model()
    for rankdir, axis, sign in (("TB", 1, 1), ("BT", 1, -1), ("LR", 0, 1), ("RL", 0, -1)):
        path = tmp_path / f"{rankdir}.svg"
        plot_model(model, to_file=str(path), rankdir=rankdir)
        first, last = _box_corner(path, "left"), _box_corner(path, "out")
        assert sign * (last[axis] - first[axis]) > 50, rankdir
    with pytest.raises(ValueError, match="rankdir"):
        plot_model(model, to_file=str(tmp_path / "x.svg"), rankdir="XY")


def test_bad_extension_and_undrawable_models(tmp_path):
    model = siamese_model()
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        plot_model(model, to_file=str(tmp_path / "model.jpg"))
    with pytest.raises(ValueError, match="extension"):
        plot_model(model, to_file=str(tmp_path / "model"))
    with pytest.raises(ValueError, match="no graph to draw"):
        plot_model(plexus.Sequential([layers.Dense(2)]), to_file=str(tmp_path / "m.svg"))


def test_missing_matplotlib_message(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install plexus\[plot\]"):
        plot_model(siamese_model(), to_file=str(tmp_path / "m.png"))
    plot_model(siamese_model(), to_file=str(tmp_path / "m.svg"))  # SVG needs nothing


def test_layout_big_branching_graph_is_fast_and_overlap_free():
    """~300 boxes with inception-like branches and residual skips."""
    import time
    widths, heights, edges = [120.0], [30.0], []
    last = 0
    for _ in range(25):
        heads = []
        for depth in (1, 2, 3, 3):
            prev = last
            for _ in range(depth):
                widths.append(100.0), heights.append(30.0)
                edges.append((prev, len(widths) - 1))
                prev = len(widths) - 1
            heads.append(prev)
        widths.append(140.0), heights.append(30.0)
        merge = len(widths) - 1
        edges += [(h, merge) for h in heads] + [(last, merge)]
        last = merge
    assert len(widths) > 250
    start = time.process_time()
    lay = layout(widths, heights, edges)
    assert time.process_time() - start < 2.0
    assert len(lay.paths) == len(edges)
    boxes = sorted((lay.ys[i], lay.xs[i] - widths[i] / 2, lay.xs[i] + widths[i] / 2)
                   for i in range(len(widths)))
    for (y1, l1, r1), (y2, l2, r2) in zip(boxes, boxes[1:]):
        if abs(y1 - y2) < 1e-6:
            assert r1 <= l2 + 1e-6, "boxes in one rank overlap"
    for (u, v), path in zip(edges, lay.paths):
        assert path[0][1] < path[-1][1]  # edges run downwards
        assert all(a[1] <= b[1] + 1e-6 for a, b in zip(path, path[1:]))


def test_inception_v3_draws_quickly(tmp_path):
    applications = pytest.importorskip("plexus.applications")
    pytest.importorskip("matplotlib")
    import time
    model = applications.InceptionV3(weights=None)
    start = time.process_time()
    with pytest.warns(UserWarning, match="dpi lowered"):
        plot_model(model, to_file=str(tmp_path / "inception.png"))
    elapsed = time.process_time() - start
    assert elapsed < 3.0, f"InceptionV3 took {elapsed:.1f}s of CPU to draw"
    assert (tmp_path / "inception.png").read_bytes()[:4] == b"\x89PNG"


def test_dpi_sets_png_resolution(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image
    model = siamese_model()
    sizes = []
    for dpi in (40, 80):
        path = tmp_path / f"m{dpi}.png"
        plot_model(model, to_file=str(path), dpi=dpi)
        sizes.append(Image.open(path).size)
    assert abs(sizes[1][0] - 2 * sizes[0][0]) <= 2 and abs(sizes[1][1] - 2 * sizes[0][1]) <= 2


def test_notebook_display_objects(tmp_path, monkeypatch):
    import sys
    import types

    class Shown:
        def __init__(self, data=None, filename=None):
            self.data, self.filename = data, filename

    display = types.SimpleNamespace(Image=type("Image", (Shown,), {}),
                                    SVG=type("SVG", (Shown,), {}))
    fake = types.ModuleType("IPython")
    fake.display = display
    monkeypatch.setitem(sys.modules, "IPython", fake)
    model = siamese_model()
    shown = plot_model(model, to_file=str(tmp_path / "m.svg"))
    assert type(shown).__name__ == "SVG" and "<svg" in shown.data
    if importlib.util.find_spec("matplotlib") is not None:
        shown = plot_model(model, to_file=str(tmp_path / "m.png"), dpi=30)
        assert type(shown).__name__ == "Image" and shown.filename == str(tmp_path / "m.png")
    monkeypatch.setitem(sys.modules, "IPython", None)  # not installed: a plain object
    shown = plot_model(model, to_file=str(tmp_path / "m2.svg"))
    assert shown._repr_svg_().startswith("<?xml") and shown._repr_png_() is None
