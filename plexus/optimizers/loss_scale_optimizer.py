"""`LossScaleOptimizer`: dynamic loss scaling for float16 training."""
import warnings

import numpy as np
import torch

from plexus.distribution import runtime as distributed
from plexus.training import optimizers as O


class LossScaleOptimizer(O.Optimizer):
    """Wraps an optimizer with dynamic loss scaling, so that small float16 gradients do not
    underflow to zero.

    The training step multiplies the loss by the current scale (`scale_loss`) before
    backpropagating; this optimizer divides the gradients by it again before the wrapped
    optimizer sees them. When some gradient is not finite (the scale was too large) the step is
    skipped and the scale halved; after `dynamic_growth_steps` finite steps in a row it doubles.
    `compile` wraps the optimizer in one automatically when the model's dtype policy is
    `"mixed_float16"` (unless `auto_scale_loss=False`).

    Unscaling and the finiteness check are one fused multi-tensor operation over all gradients
    (`torch._amp_foreach_non_finite_check_and_unscale_`, as `torch.amp.GradScaler` uses); the
    host reads one flag per step to decide whether the update runs.

    Args:
        inner_optimizer: the `plexus.optimizers.Optimizer` that applies the updates.
        initial_scale: the starting loss scale (2**15). Large is better: a scale that is too
            large falls quickly, one that is too small grows only every `dynamic_growth_steps`.
        dynamic_growth_steps: how many finite steps in a row double the scale (2000).
        name: the optimizer's name.

    Example:

        opt = plexus.mixed_precision.LossScaleOptimizer(plexus.optimizers.Adam())
        model.compile(optimizer=opt, loss="mse")
    """

    _packable = False  # the inner optimizer packs the weights

    def __init__(self, inner_optimizer, initial_scale=2.0 ** 15, dynamic_growth_steps=2000,
                 name=None, **kwargs):
        if not kwargs.pop("dynamic", True):
            raise ValueError(
                "LossScaleOptimizer is always dynamic. For a fixed scale, multiply the loss "
                "yourself and leave the optimizer unwrapped.")
        for key in ("learning_rate", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm"):
            if kwargs.get(key) is not None and key in kwargs:
                raise ValueError(
                    f"LossScaleOptimizer does not take `{key}`: set it on the inner optimizer.")
            kwargs.pop(key, None)
        for key in ("use_ema", "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
                    "gradient_accumulation_steps"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"LossScaleOptimizer: unexpected keyword argument(s) "
                            f"{', '.join(sorted(kwargs))}.")
        inner_optimizer = O.get(inner_optimizer)
        if isinstance(inner_optimizer, LossScaleOptimizer):
            raise ValueError("LossScaleOptimizer cannot wrap another LossScaleOptimizer.")
        if initial_scale <= 0 or int(dynamic_growth_steps) < 1:
            raise ValueError(
                f"LossScaleOptimizer needs initial_scale > 0 and dynamic_growth_steps >= 1; "
                f"received {initial_scale} and {dynamic_growth_steps}.")
        super().__init__(learning_rate=0.0, name=name or "loss_scale_optimizer")
        self.inner_optimizer = inner_optimizer
        self.initial_scale = float(initial_scale)
        self.dynamic_growth_steps = int(dynamic_growth_steps)
        self.dynamic_scale = torch.tensor(self.initial_scale, dtype=torch.float32)
        self.step_counter = torch.zeros((), dtype=torch.int32)
        self._found_inf = torch.zeros((), dtype=torch.float32)

    # ------------------------------------------------------------------ delegation
    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if "inner_optimizer" in self.__dict__:
            self.inner_optimizer.learning_rate = value

    lr = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @iterations.setter
    def iterations(self, value):
        if "inner_optimizer" in self.__dict__:
            self.inner_optimizer.iterations = value

    @property
    def loss_scale(self):
        """The current scale, as a Python float."""
        return float(self.dynamic_scale)

    def bind_model(self, model):
        self.inner_optimizer.bind_model(model)

    def build(self, var_list):
        self._vars = list(var_list)
        self.inner_optimizer.build(self._vars)
        device = next((p.device for p in self._vars), self.dynamic_scale.device)
        if device.type == "cpu":
            warnings.warn(
                "Training with float16 computations (mixed_float16) on a CPU: most CPUs have no "
                "float16 matrix units, and torch's float16 matmul and convolution kernels run "
                "several times slower than float32 there (measured 5-6x on an AVX-512 CPU). On "
                "a CPU use mixed_bfloat16, which needs no loss scaling.", stacklevel=4)
        for name in ("dynamic_scale", "step_counter", "_found_inf"):
            setattr(self, name, getattr(self, name).to(device))
        self.built = True

    # ------------------------------------------------------------------ scaling
    def scale_loss(self, loss):
        """`loss` times the current scale: what the training step backpropagates."""
        return loss * self.dynamic_scale.to(loss.dtype)

    @torch.no_grad()
    def step(self):
        """Unscale the gradients and check them in one fused pass; update with the inner
        optimizer when all are finite, else skip the update. Then adjust the scale. Under a
        distribution the gradients are averaged across processes first, so that every process
        finds the same overflow and skips the same updates."""
        averaged = distributed.average_now(self._vars)
        grads = [p.grad for p in self._vars if p.grad is not None]
        found = self._found_inf
        found.zero_()
        if grads:
            by_kind = {}
            for g in grads:
                by_kind.setdefault((g.device, g.dtype), []).append(g)
            inv = self.dynamic_scale.reciprocal()
            for (device, _), group in by_kind.items():
                torch._amp_foreach_non_finite_check_and_unscale_(
                    group, found if device == found.device else found.to(device),
                    inv.to(device))
        if not bool(found):
            if averaged:  # (the inner optimizer must not average them again)
                self.inner_optimizer._gradients_averaged = True
            self.inner_optimizer.step()
        torch._amp_update_scale_(self.dynamic_scale, self.step_counter, found, 2.0, 0.5,
                                 self.dynamic_growth_steps)

    def finalize_variable_values(self, var_list):
        """The inner optimizer's end of training (its moving averages, with `use_ema`)."""
        self.inner_optimizer.finalize_variable_values(var_list)

    # ------------------------------------------------------------------ state and config
    @property
    def variables(self):
        return self.inner_optimizer.variables

    _builds_before_loading = True  # (saving: build for the model's weights, then load)

    def save_own_variables(self, store):
        """Fill `store` in Keras's order: this optimizer's (unused) iteration count and rate,
        the growth counter, the scale, then the inner optimizer's entries."""
        from plexus.saving import optimizer_state
        arrays = [np.asarray(0, np.int64), np.asarray(0.0, np.float32),
                  self.step_counter.cpu().numpy(), self.dynamic_scale.cpu().numpy()]
        arrays += optimizer_state._arrays(self.inner_optimizer)
        store.update({str(i): a for i, a in enumerate(arrays)})

    def load_own_variables(self, store):
        """Read what `save_own_variables` (or Keras's LossScaleOptimizer) wrote."""
        from plexus.saving import optimizer_state
        from plexus.saving.errors import LoadError
        arrays = [store[str(i)] for i in range(len(store))]
        if len(arrays) < 5:
            raise LoadError(f"The saved LossScaleOptimizer state has {len(arrays)} entries; "
                            "expected at least 5 (its own four, then the inner optimizer's).")
        counts = [np.asarray(a) for a in arrays[2:4]]
        if any(a.size != 1 or a.dtype.kind not in "biuf" for a in counts):
            raise LoadError("The saved LossScaleOptimizer state must hold one number each for "
                            "its growth counter and its scale (entries 2 and 3).")
        # the inner optimizer's state is checked before anything changes
        commit = optimizer_state.stage_restore(self.inner_optimizer, arrays[4:],
                                               "LossScaleOptimizer state", self._vars)
        with torch.no_grad():
            self.step_counter.fill_(int(counts[0].reshape(())))
            self.dynamic_scale.fill_(float(counts[1].reshape(())))
        if commit is not None:
            commit()

    def get_config(self):
        return {"name": self.name, "inner_optimizer": O.serialize(self.inner_optimizer),
                "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = config.pop("inner_optimizer")
        if isinstance(inner, dict):
            inner = O.deserialize(inner, custom_objects)
        return cls(inner, **config)

    def __repr__(self):
        return (f"<LossScaleOptimizer inner={self.inner_optimizer!r} "
                f"scale={float(self.dynamic_scale)}>")


O.BY_NAME["LossScaleOptimizer"] = LossScaleOptimizer
