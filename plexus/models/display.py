"""`print(model)`: the module tree as torch prints one, each plexus layer with its class, name
and main settings (`summary()` stays Keras's table)."""


_SHOWN = ("units", "filters", "kernel_size", "strides", "padding", "pool_size", "rate",
          "activation", "num_heads", "key_dim", "input_dim", "output_dim", "target_shape",
          "axis", "return_sequences", "return_state", "merge_mode", "dims")


def describe(layer):
    """`name='dense', units=32, activation='relu'`: a layer's name and main settings."""
    from plexus.layers.layer import Layer
    parts = [f"name={layer.name!r}"]
    inputs = getattr(layer, "inputs", None) if not _is_plain_layer(layer) else None
    if inputs:
        for what, tensors in (("inputs", inputs), ("outputs", layer.outputs)):
            shapes = [str(tuple(t.shape)) for t in tensors]
            parts.append(f"{what}=" + (shapes[0] if len(shapes) == 1
                                       else "[" + ", ".join(shapes) + "]"))
    try:
        config = layer.get_config() if isinstance(layer, Layer) else {}
    except Exception:  # a user layer without a config still prints
        config = {}
    for key in _SHOWN:
        value = config.get(key)
        if value is None or value is False or isinstance(value, dict):
            continue
        parts.append(f"{key}={value!r}")
    if isinstance(layer, Layer) and not layer.trainable:
        parts.append("trainable=False")
    return ", ".join(parts)


def _is_plain_layer(layer):
    from plexus.models.model import Model
    return not isinstance(layer, Model)


def module_tree(module):
    """The torch-style repr of `module`: `Class(settings` then one `(name): child` line per
    submodule, indented; torch modules inside print as torch prints them."""
    from plexus.layers.layer import Layer
    if not isinstance(module, Layer):
        return repr(module)
    head = f"{type(module).__name__}({describe(module)}"
    children = [(name, child) for name, child in module._modules.items() if child is not None]
    if not children:
        return head + ")"
    lines = [head]
    for name, child in children:
        text = module_tree(child).replace("\n", "\n  ")
        lines.append(f"  ({name}): {text}")
    return "\n".join(lines) + "\n)"


