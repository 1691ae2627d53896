"""Model configs in Keras 3's format: the graph as JSON, and back.

A functional config lists every layer with its serialized config and its `inbound_nodes`: the
calls that made it, whose arguments name symbolic tensors as
`{"class_name": "__keras_tensor__", "config": {"shape", "dtype", "keras_history":
[layer_name, node_index, tensor_index]}}`. `input_layers` / `output_layers` name the model's
inputs and outputs the same way. A Sequential config is the list of its layers.

Node indices count only the calls that belong to the model. As in Keras, `input_layers` and
`output_layers` count the calls of a nested functional model from 1; Keras 2 configs (inbound
nodes as lists) count a nested model's calls from 1 everywhere.
"""
import collections

from plexus.graph import tree
from plexus.graph.tensor import KerasTensor
from plexus.saving import limits
from plexus.saving.errors import LoadError
from plexus.saving.serialization import (
    check_name, current_context, deserialize_keras_object, load_context, serialize_keras_object,
    serialize_layer,
)


def _is_functional(layer):
    from plexus.models.functional import Functional
    from plexus.models.sequential import Sequential
    return isinstance(layer, Functional) and not isinstance(layer, Sequential)


# ---------------------------------------------------------------------------------- to config
def functional_config(model):
    """The Keras-format config of a functional `model`."""
    own = {id(n) for nodes in model._nodes_by_depth.values() for n in nodes}
    reindex = {}
    for layer in model.operations:
        kept = 0
        for node in layer._inbound_nodes:
            if id(node) in own:
                reindex[id(node)] = kept
                kept += 1

    def tensor_config(t):
        return {"class_name": "__keras_tensor__",
                "config": {"shape": list(t.shape), "dtype": t.dtype,
                           "keras_history": [t.node.layer.name, reindex[id(t.node)], t.index]}}

    def serialize_arg(x):
        return tensor_config(x) if isinstance(x, KerasTensor) else serialize_keras_object(x)

    layers = []
    for layer in model.operations:
        op = op_entry(layer)
        entry = op or serialize_layer(layer)
        entry["name"] = layer.name
        nodes = []
        for node in layer._inbound_nodes:
            if id(node) in own and node.input_tensors:
                args = list(node.args)
                nodes.append({"args": tree.map_structure(serialize_arg, args),
                              "kwargs": tree.map_structure(serialize_arg, dict(node.kwargs))})
        entry["inbound_nodes"] = nodes
        layers.append(entry)

    def endpoint(t):
        offset = 1 if _is_functional(t.node.layer) else 0
        return [t.node.layer.name, reindex[id(t.node)] + offset, t.index]

    return {"name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": _endpoints(model._inputs_struct, endpoint),
            "output_layers": _endpoints(model._outputs_struct, endpoint)}


def op_entry(layer):
    """A recorded op (`x + 1`, `ops.mean(x)`) in Keras's format for `keras.ops` calls."""
    opdef = getattr(layer, "opdef", None)
    if opdef is None or not getattr(layer, "_is_op", False):
        return None
    return {"module": f"keras.src.ops.{opdef.module}", "class_name": opdef.class_name,
            "config": layer.get_config(), "registered_name": None}


def _endpoints(struct, fn):
    if isinstance(struct, KerasTensor):
        return fn(struct)
    if isinstance(struct, dict):
        return {k: _endpoints(v, fn) for k, v in struct.items()}
    return [_endpoints(v, fn) for v in struct]


def sequential_config(model):
    layers = []
    if model._input_layer is not None:
        layers.append(serialize_layer(model._input_layer))
    layers += [serialize_layer(layer) for layer in model.layers]
    config = {"name": model.name, "trainable": model.trainable,
              "dtype": {"module": "keras", "class_name": "DTypePolicy",
                        "config": {"name": model.dtype_policy.name}, "registered_name": None},
              "layers": layers}
    if model._input_layer is not None:
        config["build_input_shape"] = list(model._input_layer.batch_shape)
    return config


# -------------------------------------------------------------------------------- from config
def _fail(msg):
    raise LoadError(msg + current_context().where())


def model_from_config(cls, config, custom_objects=None):
    """Rebuild a model of class `cls` from its config (plexus's or Keras's): a Sequential
    stack, a functional graph (a config with `layers`), or a subclassed model's arguments."""
    from plexus.models.sequential import Sequential
    if not isinstance(config, dict):
        _fail(f"A model config must be a JSON object; received {type(config).__name__}")
    with load_context(custom_objects, current_context().safe_mode):
        if issubclass(cls, Sequential):
            return sequential_from_config(cls, config)
        if "layers" not in config:
            return _subclassed_from_config(cls, config)
        return _graph_from_config(cls, config)


def _subclassed_from_config(cls, config):
    try:
        return cls(**deserialize_keras_object(config))
    except TypeError as e:
        _fail(f"Could not re-create the subclassed model {cls.__name__} from its config ({e}). "
              "Give the class get_config()/from_config() methods that match its __init__")


def _create_layers(layer_list):
    from plexus.saving.serialization import is_serialized_object
    created, order = {}, []
    if not isinstance(layer_list, list):
        _fail("The model config's 'layers' must be a list")
    where = current_context().where()
    limits.count_layers(len(layer_list), where)
    limits.count_nodes(sum(len(d["inbound_nodes"]) for d in layer_list if isinstance(d, dict)
                           and isinstance(d.get("inbound_nodes"), list)), where)
    for data in layer_list:
        if not isinstance(data, dict) or not isinstance(data.get("class_name"), str):
            _fail(f"Invalid layer entry {str(data)[:120]} in the model config")
        data = dict(data)
        data.setdefault("config", {})
        if not is_serialized_object(data):
            _fail(f"Invalid layer entry {str(data)[:120]} in the model config")
        cfg = data["config"] if isinstance(data["config"], dict) else {}
        name = check_name(data.get("name", cfg.get("name")))
        if name in created:
            _fail(f"The model config has two layers named {name!r}")
        layer = deserialize_keras_object(data, category="layers")
        from plexus.layers.layer import Layer
        if not isinstance(layer, Layer):
            _fail(f"Config entry {name!r} ({data['class_name']}) is not a layer")
        created[name] = layer
        nodes = data.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            _fail(f"Layer {name!r}: 'inbound_nodes' must be a list")
        order.append((layer, list(nodes)))
    return created, order


class _NotReady(Exception):
    """An inbound node is not created yet; try this call again later."""


def _history_tensor(created, history, legacy):
    if not isinstance(history, (list, tuple)) or len(history) < 3:
        _fail(f"Invalid tensor reference {str(history)[:80]} in the model config")
    name, node_index, tensor_index = history[0], history[1], history[2]
    if not isinstance(name, str) or name not in created:
        _fail(f"The model config refers to a layer {str(name)[:80]!r} that it does not define")
    if not isinstance(node_index, int) or not isinstance(tensor_index, int):
        _fail(f"Invalid tensor reference {str(history)[:80]} in the model config")
    layer = created[name]
    if legacy and _is_model(layer):
        node_index -= 1
    if node_index < 0:
        _fail(f"Invalid node index in tensor reference {list(history)[:3]}")
    if node_index >= len(layer._inbound_nodes):
        raise _NotReady(name)
    outputs = layer._inbound_nodes[node_index].output_tensors
    if not 0 <= tensor_index < len(outputs):
        _fail(f"Tensor reference {list(history)[:3]}: layer {name!r} has {len(outputs)} outputs")
    return outputs[tensor_index]


def _node_call_args(created, node):
    """(args, kwargs) for one serialized call, Keras 3 dicts or Keras 2 lists."""
    if isinstance(node, list):  # Keras 2: [[layer_name, node_index, tensor_index, kwargs], ...]
        tensors, kwargs = [], {}
        for item in node:
            if not isinstance(item, list) or len(item) not in (3, 4):
                _fail(f"Invalid inbound node {str(item)[:80]} in the model config")
            tensors.append(_history_tensor(created, item, legacy=True))
            if len(item) == 4 and isinstance(item[3], dict):
                kwargs = deserialize_keras_object(item[3])
        return [tensors[0] if len(tensors) == 1 else tensors], kwargs
    if not isinstance(node, dict):
        _fail(f"Invalid inbound node {str(node)[:80]} in the model config")

    def revive(x):
        if isinstance(x, dict) and x.get("class_name") == "__keras_tensor__":
            cfg = x.get("config") if isinstance(x.get("config"), dict) else {}
            return _history_tensor(created, cfg.get("keras_history"), legacy=False)
        if isinstance(x, dict) and "class_name" in x:
            return deserialize_keras_object(x)
        if isinstance(x, dict):
            return {k: revive(v) for k, v in x.items()}
        if isinstance(x, list):
            return [revive(v) for v in x]
        return x

    args = revive(node.get("args", []))
    kwargs = revive(node.get("kwargs", {}))
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        _fail("Invalid inbound node arguments in the model config")
    return args, kwargs


def _check_call_kwargs(layer, kwargs):
    """A recorded call may only pass arguments the layer's `call` takes."""
    from plexus.graph.functional import call_accepts
    for key in kwargs:
        if not isinstance(key, str) or not call_accepts(layer, key):
            _fail(f"The model config calls layer {layer.name!r} with argument {str(key)[:40]!r}, "
                  f"which {type(layer).__name__}.call does not take")


def _replay_calls(created, order):
    """Make the recorded calls again, each once the calls it needs have been made: a call
    waiting for another layer's call waits in a list of that layer, so the work is linear in
    the number of calls whatever order the config lists its layers in."""
    queue = collections.deque([layer, nodes, 0] for layer, nodes in order if nodes)
    waiting = {}  # layer name -> entries waiting for a call of that layer
    while queue:
        entry = queue.popleft()
        layer, nodes = entry[0], entry[1]
        while entry[2] < len(nodes):
            try:
                args, kwargs = _node_call_args(created, nodes[entry[2]])
            except _NotReady as e:
                waiting.setdefault(e.args[0], []).append(entry)
                break
            _check_call_kwargs(layer, kwargs)
            if not any(isinstance(t, KerasTensor) for t in tree.flatten((args, kwargs))):
                _fail(f"The model config calls layer {layer.name!r} on no tensor")
            try:
                layer(*args, **kwargs)
            except LoadError:
                raise
            except Exception as e:  # any failure here means the graph in the file is bad
                _fail(f"Re-creating the call of layer {layer.name!r} failed: "
                      f"{type(e).__name__}: {e}")
            entry[2] += 1
            queue.extend(waiting.pop(layer.name, ()))
    if waiting:
        names = ", ".join(repr(e[0].name) for entries in waiting.values() for e in entries)
        _fail(f"The model config's graph cannot be rebuilt: the calls of {names} refer to "
              "calls that never happen (a loop or a missing layer)")


def _graph_from_config(cls, config):
    created, order = _create_layers(config.get("layers"))
    _replay_calls(created, order)
    legacy = any(isinstance(n, list) for _, nodes in order for n in nodes)

    def endpoint(ref):
        name, node_index, tensor_index = ref[0], ref[1], ref[2]
        if name in created and isinstance(node_index, int) and \
                (legacy and _is_model(created[name]) or _is_functional(created[name])):
            node_index -= 1
        if name in created and isinstance(created[name], _input_layer_cls()):
            node_index = 0
        return _history_tensor(created, [name, node_index, tensor_index], legacy=False)

    def walk(refs):
        if isinstance(refs, list) and len(refs) in (3, 4) and isinstance(refs[0], str):
            try:
                return endpoint(refs)
            except _NotReady:
                _fail(f"The model config's inputs/outputs refer to a missing call {refs[:3]}")
        if isinstance(refs, dict):
            return {k: walk(v) for k, v in refs.items()}
        if isinstance(refs, list):
            return [walk(v) for v in refs]
        _fail(f"Invalid input/output reference {str(refs)[:80]} in the model config")

    for key in ("input_layers", "output_layers"):
        if key not in config:
            _fail(f"The model config has no {key!r}")
    inputs, outputs = walk(config["input_layers"]), walk(config["output_layers"])
    name = config.get("name")
    if name is not None:
        check_name(name, "model name")
    extra = {k: v for k, v in config.items()
             if k not in ("layers", "input_layers", "output_layers", "name", "trainable")}
    try:
        model = cls(inputs=inputs, outputs=outputs, name=name, **extra)
    except (TypeError, ValueError) as e:
        _fail(f"The model config's graph is invalid: {e}")
    if config.get("trainable") is False:
        model.trainable = False
    return model


def _is_model(layer):
    from plexus.models.model import Model
    return isinstance(layer, Model)


def _input_layer_cls():
    from plexus.layers.input_layer import InputLayer
    return InputLayer


def sequential_from_config(cls, config):
    """Rebuild a Sequential model from `sequential_config`'s output (or Keras's)."""
    layer_list = config.get("layers")
    if not isinstance(layer_list, list):
        _fail("A Sequential config needs a 'layers' list")
    name = config.get("name")
    if name is not None:
        check_name(name, "model name")
    limits.count_layers(len(layer_list), current_context().where())
    model = cls(name=name)
    for data in layer_list:
        if not isinstance(data, dict):
            _fail(f"Invalid layer entry {str(data)[:120]} in the Sequential config")
        if "config" in data and isinstance(data["config"], dict) and "name" in data["config"]:
            check_name(data["config"]["name"])
        layer = deserialize_keras_object(data, category="layers")
        from plexus.layers.layer import Layer
        if not isinstance(layer, Layer):
            _fail(f"Sequential config entry {data.get('class_name')!r} is not a layer")
        try:
            model.add(layer, rebuild=False)
        except (TypeError, ValueError) as e:
            _fail(f"Rebuilding Sequential model {name!r} failed at layer {layer.name!r}: {e}")
    try:
        model._rebuild()  # one graph for all layers: linear in their number
    except LoadError:
        raise
    except Exception as e:  # any failure here means the layers in the file do not fit together
        _fail(f"Rebuilding Sequential model {name!r} failed: {type(e).__name__}: {e}")
    shape = config.get("build_input_shape")
    if not model.built and isinstance(shape, list) and model.layers:
        from plexus.saving.serialization import check_shape
        model.build(check_shape(shape, f"model {name!r}"))
    if config.get("trainable") is False:
        model.trainable = False
    return model
