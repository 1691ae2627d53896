"""`no_grad`: `torch.no_grad()` as a decorator, for the functions the training loop calls on
every batch.

`@torch.no_grad()` builds a context-manager object and enters and leaves it on each call (a
few microseconds in Python); a step of a small model calls such functions twice, so the loop
uses this flat version instead. It switches autograd off for the call and restores the mode it
found, exactly as `torch.no_grad` does (the mode is a thread-local flag in torch), and leaves
it alone when it is already off.
"""
import functools

import torch

_set_enabled = torch._C._set_grad_enabled
_is_enabled = torch.is_grad_enabled


def no_grad(fn):
    """Run `fn` with autograd off (see the module's docstring)."""
    @functools.wraps(fn)
    def inner(*args, **kwargs):
        if not _is_enabled():
            return fn(*args, **kwargs)
        _set_enabled(False)
        try:
            return fn(*args, **kwargs)
        finally:
            _set_enabled(True)
    return inner
