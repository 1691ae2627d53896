"""Small weights packed into one buffer, so that an optimizer update is a handful of kernels.

On a CPU, and for small tensors on any device, an optimizer update costs kernel launches, not
arithmetic: RMSprop on a 3-layer MLP is 5 operations on each of 6 tensors, 30 kernels of a few
microseconds each for 3,000 numbers. `Packing` gives every small, dense floating-point weight of
one device and dtype a view of one flat buffer: the weight's storage is rebound to that view
(`p.data = view`, so the `Parameter` object the model holds stays the same) and the optimizer's
slots for those weights are views of flat buffers laid out alike. An update then copies the
gradients into a flat gradient buffer (one multi-tensor copy) and runs its rule once per buffer.
Large weights (more than `PACK_MAX_NUMEL` elements) stay where they are: their kernels are long
enough that launching them is cheap, and copying their gradients would not be.

Someone else may rebind a packed weight's storage (`module.to(...)`, a second optimizer that
shares the weight): `intact` notices, and the optimizer packs again from the weights' current
values before updating.
"""
import torch

PACK_MAX_NUMEL = 1 << 16


def _dense(t):
    """Whether `t` covers exactly `numel` consecutive elements in some order of its dimensions
    (contiguous, channels-last, any permutation), so that a flat view can stand for it."""
    expected = 1
    for size, stride in sorted(zip(t.shape, t.stride()), key=lambda s: s[1]):
        if size == 1:
            continue
        if stride != expected:
            return False
        expected *= size
    return True


class SlotList(list):
    """One optimizer slot (moments, accumulators): a tensor per weight, in the weights' order,
    with `packed`, the tensors the update runs on (flat buffers first, then the unpacked
    weights' own tensors)."""

    packed = None


_data_ptr = torch.Tensor.data_ptr


class Packing:
    """Which of `params` share a flat buffer, and where each one lives in it."""

    def __init__(self, params):
        by_key, seen = {}, set()
        for i, p in enumerate(params):
            if id(p) in seen:  # listed twice: one view can hold it, the repeat stays loose
                continue
            seen.add(id(p))
            if (p.is_floating_point() and 0 < p.numel() <= PACK_MAX_NUMEL and _dense(p)
                    and not p.is_sparse):
                by_key.setdefault((p.device, p.dtype), []).append(i)
        self.groups = [idx for idx in by_key.values() if len(idx) > 1]
        packed = {i for idx in self.groups for i in idx}
        self.loose = [i for i in range(len(params)) if i not in packed]
        self.layouts = []  # per group: [(index, offset, shape, stride)]
        for idx in self.groups:
            layout, offset = [], 0
            for i in idx:
                p = params[i]
                layout.append((i, offset, tuple(p.shape), tuple(p.stride())))
                offset += p.numel()
            self.layouts.append((layout, offset, params[idx[0]].device, params[idx[0]].dtype))
        self.active = bool(self.groups)
        self._bind(params)

    # ------------------------------------------------------------------ buffers
    def _flat(self, fill):
        return [torch.full((n,), fill, device=device, dtype=dtype)
                for _, n, device, dtype in self.layouts]

    def _views(self, flats):
        """`{index: view}` of the flat buffers, each view shaped and strided as its weight."""
        out = {}
        for flat, (layout, _, _, _) in zip(flats, self.layouts):
            for i, offset, shape, stride in layout:
                out[i] = flat.as_strided(shape, stride, offset)
        return out

    def _bind(self, params):
        """Copy the packed weights into fresh flat buffers and rebind them to their views."""
        self.flat_params = self._flat(0.0)
        with torch.no_grad():
            for i, view in self._views(self.flat_params).items():
                view.copy_(params[i].data)
                params[i].data = view
        self.flat_grads = self._flat(0.0)
        views = self._views(self.flat_grads)
        self.grad_views = [[views[i] for i in idx] for idx in self.groups]
        self._grad_of = views
        self._ptrs = [(params[i], params[i].data_ptr()) for idx in self.groups for i in idx]
        self._packed_params = [p for p, _ in self._ptrs]
        self._packed_ptrs = [ptr for _, ptr in self._ptrs]
        self._loose = [(params[i], params[i].dtype, params[i].device) for i in self.loose]

    def intact(self):
        """Whether every packed weight still lives in its view (nobody rebound its storage)
        and every loose one keeps the dtype and device its slots were made for."""
        return (list(map(_data_ptr, self._packed_params)) == self._packed_ptrs
                and all(p.dtype == dt and p.device == dev for p, dt, dev in self._loose))

    # ------------------------------------------------------------------ what updates use
    def slot(self, params, fill=0.0):
        """A `SlotList` of zeros (or `fill`) for `params`, packed like the weights."""
        flats = self._flat(fill)
        views = self._views(flats)
        out = SlotList(
            views[i] if i in views
            else torch.full_like(p, fill, memory_format=torch.preserve_format).detach()
            for i, p in enumerate(params))
        out.packed = flats + [out[i] for i in self.loose]
        return out

    def params(self, params):
        return self.flat_params + [params[i] for i in self.loose]

    def grad_view(self, i):
        """The view of the flat gradient buffer that weight `i`'s gradient is copied into (a
        gradient computed straight into it is not copied), or None for an unpacked weight."""
        return self._grad_of.get(i)

    def gather(self, grads):
        """Copy the packed weights' gradients into the flat gradient buffers; returns the
        gradients the update runs on (flat buffers first, then the unpacked weights')."""
        for views, idx in zip(self.grad_views, self.groups):
            if all(grads[i] is v for i, v in zip(idx, views)):
                continue  # written in place already
            torch._foreach_copy_(views, [grads[i].to_dense() if grads[i].is_sparse else grads[i]
                                         for i in idx])
        return self.flat_grads + [grads[i] for i in self.loose]
