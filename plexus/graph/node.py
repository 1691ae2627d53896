"""A node is one call of a layer on symbolic tensors. It points backwards only."""
from plexus.graph import tree
from plexus.graph.tensor import KerasTensor


class Node:
    """Records `outputs = layer(*args, **kwargs)`; immutable once made.

    `input_tensors` and `output_tensors` are the flat lists of symbolic tensors; `args` and
    `kwargs` keep the structure the layer was called with, so the call can be replayed on data.
    """

    def __init__(self, layer, args, kwargs, outputs):
        self.layer = layer
        self.args = args
        self.kwargs = kwargs
        self.outputs = outputs
        self.input_tensors = [t for t in tree.flatten((args, kwargs)) if isinstance(t, KerasTensor)]
        self.output_tensors = tree.flatten(outputs)
        self.index = len(layer._inbound_nodes)
        layer._inbound_nodes.append(self)
        for i, t in enumerate(self.output_tensors):
            t.node = self
            t.index = i

    @property
    def parent_nodes(self):
        return [t.node for t in self.input_tensors if t.node is not None]

    @property
    def is_input(self):
        return not self.input_tensors

    def __repr__(self):
        return f"<Node {self.layer.name}[{self.index}]>"
