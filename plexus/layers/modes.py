"""Training mode at the border between plexus and torch modules.

The rule (docs/design.md, "Training mode"): a plexus layer or model starts in inference mode, so
`model(x)` infers as in Keras, and `fit` / `predict` / `evaluate` set the mode they need. Torch
drives the mode once the model is put under a torch module: registering a plexus model as a
submodule of a torch module (a `LightningModule`, `nn.Sequential`, any `nn.Module` attribute)
gives it that module's mode (train mode for a fresh module), and `.train()` / `.eval()` set it
as on any module. Torch modules registered under a plexus layer likewise take the layer's mode.
"""
import torch

from plexus.layers.layer import Layer


def _adopt_parent_mode(parent, name, child):
    """Global module-registration hook: when a module crosses the plexus/torch border, the
    child takes its new parent's training mode."""
    if child is not None and isinstance(parent, Layer) != isinstance(child, Layer):
        child.train(bool(parent.training))  # (also a container's plexus children)
    return None


torch.nn.modules.module.register_module_module_registration_hook(_adopt_parent_mode)
