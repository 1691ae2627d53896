"""`Functional`: a model that is a graph of layer calls from `Input`s to outputs."""
import torch

from plexus.graph import functional, inputs as I, tree
from plexus.graph.intermediate_inputs import clone_intermediate_inputs
from plexus.graph.tensor import KerasTensor, torch_dtype
from plexus.layers.input_layer import InputLayer
from plexus.layers.layer import Layer, any_hooks
from plexus.models import fx
from plexus.models.model import Model
from plexus.saving import registry


def _describe(x):
    return repr(x) if isinstance(x, KerasTensor) else type(x).__name__


class Functional(Model):
    """A model built from symbolic tensors: `Model(inputs, outputs)` returns one.

        inputs = plexus.Input(shape=(64,))
        outputs = plexus.layers.Dense(10, activation="softmax")(inputs)
        model = plexus.Model(inputs, outputs)   # type(model).__name__ == "Functional"

    `inputs` and `outputs` may each be one tensor, a list or a dict. Calling the model runs its
    layers in graph order; calling it on new symbolic tensors reuses its weights in a bigger
    graph.
    """

    _name_prefix = "functional"

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        Layer.__init__(self, name=name, trainable=trainable, dtype=kwargs.pop("dtype", None),
                       **kwargs)
        self._init_model_state()
        self._init_graph(inputs, outputs)

    # ------------------------------------------------------------------ graph set-up
    def _init_graph(self, inputs, outputs):
        inputs, outputs = clone_intermediate_inputs(inputs, outputs)
        flat_in, flat_out = tree.flatten(inputs), tree.flatten(outputs)
        for what, flat in (("inputs", flat_in), ("outputs", flat_out)):
            if not flat:
                raise ValueError(f"Model {self.name!r}: `{what}` is empty.")
            for t in flat:
                if not isinstance(t, KerasTensor):
                    raise TypeError(
                        f"Model {self.name!r}: every element of `{what}` must be a symbolic "
                        f"tensor (from plexus.Input or a layer call); received {_describe(t)}. "
                        "Build the graph by calling layers on `Input(...)` and pass those "
                        "tensors.")
        for t in flat_in:
            if t.node is None or not isinstance(t.node.layer, InputLayer):
                producer = t.node.layer.name if t.node else "nothing"
                raise ValueError(
                    f"Model {self.name!r}: input {t.name!r} was produced by layer {producer!r}, "
                    "not by `plexus.Input`. Model inputs must be Input tensors; to reuse part of "
                    "a graph, build a Model from its original Input.")
        if len({id(t) for t in flat_in}) != len(flat_in):
            raise ValueError(f"Model {self.name!r}: the same Input is listed twice in `inputs`.")
        self._inputs_struct, self._outputs_struct = inputs, outputs
        self.inputs, self.outputs = flat_in, flat_out
        nodes, self._nodes_by_depth, layers = functional.build_map(flat_in, flat_out)
        for t in flat_in:  # Input layers of unused inputs still belong to the model
            if t.node.layer not in layers:
                layers.insert(0, t.node.layer)
        names = set()
        for layer in layers:
            if layer.name in names:
                raise ValueError(
                    f"Model {self.name!r} has two different layers named {layer.name!r}. Layer "
                    "names must be unique within a model: pass distinct `name=` arguments.")
            names.add(layer.name)
        self._graph_layers = layers
        for key in [k for k, m in self._modules.items() if isinstance(m, Layer)]:
            del self._modules[key]
        for layer in layers:
            if not isinstance(layer, InputLayer):
                # Registered directly: a layer named like a Model attribute must not clash.
                self._modules[layer.name.replace(".", "_")] = layer
        self._steps, slot_of = functional.compile_steps(nodes, flat_in, flat_out)
        self._n_slots = len(slot_of)
        self._output_slots = [slot_of[id(t)] for t in flat_out]
        self._input_casts = [self._input_cast(t) for t in flat_in]
        self.built = True

    def _input_cast(self, tensor):
        """(dtype to cast data for this input to, whether integers pass): integers pass when
        only layers that take integer ids (Embedding) read the input."""
        if tensor.dtype == "string":
            return None, True  # text passes to its layers as a NumPy array
        consumers = [n.layer for n in functional.consumers(self._steps, tensor)]
        int_ok = bool(consumers) and all(getattr(l, "_accepts_int_inputs", False)
                                         for l in consumers)
        return torch_dtype(tensor.dtype), int_ok

    # ------------------------------------------------------------------ public graph API
    @property
    def layers(self):
        """The graph's layers in Keras's order; recorded ops (`x + 1`, `ops.mean(x)`) are not
        layers, as in Keras: `operations` lists them too."""
        return [l for l in self._graph_layers if not getattr(l, "_is_op", False)]

    @property
    def operations(self):
        """Every layer and recorded op of the graph, in Keras's order."""
        return list(self._graph_layers)

    @property
    def input(self):
        return _unflatten_single(self._inputs_struct)

    @property
    def output(self):
        return _unflatten_single(self._outputs_struct)

    @property
    def input_names(self):
        if isinstance(self._inputs_struct, dict):
            return list(self._inputs_struct)
        return [t.node.layer.name for t in self.inputs]

    @property
    def output_names(self):
        if isinstance(self._outputs_struct, dict):
            return list(self._outputs_struct)
        names, seen = [], {}
        for t in self.outputs:
            name = t.node.layer.name
            if name in seen:
                seen[name] += 1
                name = f"{name}_{seen[name]}"
            else:
                seen[name] = 0
            names.append(name)
        return names

    @property
    def input_shape(self):
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    # ------------------------------------------------------------------ one way in
    def _flatten_inputs(self, inputs):
        """User inputs (one value, a list, or a dict by input name) in input order."""
        return I.flatten_named(inputs, self.input_names, "input", self.name)

    def _standardize_inputs(self, inputs, device=None):
        """User inputs as the list of tensors the graph runs on: in input order, as tensors,
        rank-adapted as Keras does (`I.adapt_rank`), shape-checked, cast to each `Input`'s
        dtype (integer ids stay integers where only Embeddings read them) and on `device` (the
        parameters' device by default)."""
        flat = self._flatten_inputs(inputs)
        if device is None:
            device = next((p.device for p in self.parameters()), None)
        names = self.input_names
        out = []
        for i, x in enumerate(flat):
            dtype, int_ok = self._input_casts[i]
            if dtype is None:  # an Input(dtype="string"): text stays a NumPy array
                t = I.string_array(x, names[i])
            else:
                t = I.to_tensor(x, device, dtype, int_ok, what=f"input {names[i]!r}")
            t = I.adjust_rank(t, self.inputs[i].shape)
            expected = self.inputs[i].shape
            if self.__dict__.get("_sizes_from_data"):  # only the rank of the first data holds
                expected = (None,) * len(expected)
            I.check_shape(expected, tuple(t.shape), names[i], self.name)
            out.append(t)
        return out

    def _output_names_for_data(self):
        return self.output_names

    def _run_graph(self, xs, training=None, masks=None):
        """The outputs (a flat list) of the graph on standardised input tensors `xs`."""
        return functional.run_steps(self._steps, self._n_slots, xs, self._output_slots,
                                    training, masks)

    def _forward_flat(self, xs, training):
        """The outputs (a flat list) on standardised inputs `xs`: the graph itself when
        nothing wraps it (no override of `call`/`forward`/`__call__`, no hook on the model),
        else through `self(...)`."""
        if self._plain_call():
            return self._run_graph(xs, training)
        return tree.flatten(self(self._pack_inputs(xs), training=training))

    _standard_calls = (Layer.__call__,)  # `__call__`s that only lead to `forward`

    def forward(self, inputs, *args, **kwargs):
        """As `Layer.forward`, with the inputs named: torch tools that map arguments by name
        (`torch.export`'s `dynamic_shapes=({0: batch},)`) see the graph's inputs as one
        argument (a tensor, or a list or dict of tensors for several inputs)."""
        if type(inputs) is not torch.Tensor and fx.has_proxy(inputs):
            return fx.trace(self, inputs)  # torch.fx.symbolic_trace: the graph of layer calls
        return Layer.forward(self, inputs, *args, **kwargs)

    def _plain_call(self):
        cls = type(self)
        if cls.call is not Functional.call or cls.forward is not Functional.forward or \
                cls.__call__ not in self._standard_calls:
            return False
        return not any_hooks((self,))

    def _pack_inputs(self, xs):
        return tree.pack_like(self._inputs_struct, xs)

    def _pack_outputs(self, values):
        return tree.pack_like(self._outputs_struct, values)

    def call(self, inputs, training=None, mask=None):
        flat = self._standardize_inputs(inputs)
        masks = None
        if mask is not None:
            masks = tree.flatten(mask) if isinstance(mask, (list, tuple)) else [mask]
        return self._pack_outputs(self._run_graph(flat, training, masks))

    def compute_output_spec(self, inputs, *args, **kwargs):
        flat = self._flatten_inputs(inputs)
        names = self.input_names
        for i, t in enumerate(flat):
            I.check_shape(self.inputs[i].shape, t.shape, names[i], self.name)
        specs = functional.run_steps(
            self._steps, self._n_slots, flat, self._output_slots,
            apply=lambda step, a, kw: step.layer.compute_output_spec(*a, **kw))
        return self._pack_outputs(specs)

    def _symbolic_mask(self, inputs, in_masked):
        return False

    def build(self, input_shape=None):
        self.built = True

    # ------------------------------------------------------------------ dtype moves
    def _apply(self, fn, recurse=True):
        """`.double()`, `.half()`, `.to(dtype)`, ...: floating inputs then follow the new
        floating dtype (integer inputs stay integers)."""
        def weights_dtype():
            return next((p.dtype for p in self.parameters() if p.is_floating_point()), None)

        before = weights_dtype()
        out = super()._apply(fn, recurse)
        # inputs follow a move of the weights' floating dtype (`.float()` after `.double()`
        # included); a device move changes nothing
        target = weights_dtype()
        if target is not None and target == before:
            target = None
        elif before is None:
            moved = fn(torch.empty(0))
            target = moved.dtype if moved.dtype != torch.float32 and \
                moved.is_floating_point() else None
        if target is not None:
            self._input_casts = [(target if dtype is not None and dtype.is_floating_point
                                  else dtype, int_ok) for dtype, int_ok in self._input_casts]
        return out

    # ------------------------------------------------------------------ pickling and copies
    def __getstate__(self):
        """`pickle`, `torch.save(model)` and `copy.deepcopy` walk the graph through its nodes'
        backward links; the graph's nodes come first in the state, in execution order, so each
        node's inputs are already copied when it is reached and the walk stays shallow however
        deep the graph (an EfficientNet or NASNet would otherwise exceed Python's recursion
        limit)."""
        state = super().__getstate__()
        order = [t.node for t in self.inputs] + [step.node for step in self._steps]
        return {"_graph_node_order": order, **state}

    def __setstate__(self, state):
        state = dict(state)
        state.pop("_graph_node_order", None)
        super().__setstate__(state)

    # ------------------------------------------------------------------ config
    def get_config(self):
        from plexus.models.config import functional_config
        return functional_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from plexus.models.config import model_from_config
        return model_from_config(cls, config, custom_objects)


def _unflatten_single(struct):
    if isinstance(struct, (list, tuple)) and len(struct) == 1:
        return struct[0]
    return struct


Model._functional_class = Functional
registry.register_model_class("Functional", Functional)
