"""Training mode at the border between plexus and torch modules.

The rule (docs/design.md, "Training mode"): a plexus layer or model starts in inference mode, so
`model(x)` infers as in Keras, and `fit` / `predict` / `evaluate` set the mode they need. Torch
drives the mode once the model is put under a torch module: registering a plexus model as a
submodule of a torch module (a `LightningModule`, `nn.Sequential`, any `nn.Module` attribute)
gives it that module's mode (train mode for a fresh module), and `.train()` / `.eval()` set it
as on any module. Wrappers torch makes itself (`torch.compile`, `torch.export`, `DataParallel`)
leave the mode as it is. Torch modules registered under a plexus layer likewise take the layer's mode.
"""
import torch

from plexus.layers.layer import Layer


_CONTAINERS = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)


def _drives_mode(parent):
    """Whether a torch parent is one a user wrote or composed (a LightningModule, an
    `nn.Module` subclass, torch's containers), not a wrapper torch makes on its own
    (`torch.compile`'s `OptimizedModule`, `torch.export`'s tracing wrapper, `DataParallel`),
    which must leave the mode alone."""
    return isinstance(parent, _CONTAINERS) or not type(parent).__module__.startswith("torch.")


def _adopt_parent_mode(parent, name, child):
    """Global module-registration hook: when a module crosses the plexus/torch border, the
    child takes its new parent's training mode."""
    if child is None or isinstance(parent, Layer) == isinstance(child, Layer):
        return None
    if isinstance(parent, Layer) or _drives_mode(parent):
        child.train(bool(parent.training))  # (also a container's plexus children)
    return None


torch.nn.modules.module.register_module_module_registration_hook(_adopt_parent_mode)
