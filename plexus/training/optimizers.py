"""Optimizers with Keras's names, defaults and update rules, on torch's multi-tensor (`foreach`)
kernels, the ones `torch.optim` uses. (`torch.optim`'s own classes differ from Keras in where
epsilon goes for Adam, RMSprop, Adagrad and Adamax, and in Nadam's momentum schedule, and keep a
step count per tensor; writing the rules out keeps Keras's numbers and one `iterations` count.)

Every optimizer takes the Keras keyword arguments: `learning_rate` (a float or a
schedule), `weight_decay` (decoupled: `w -= w * weight_decay * lr` before the update),
`clipnorm` (per-gradient norm), `clipvalue`, `global_clipnorm`, `gradient_accumulation_steps`
(update every n-th step with the mean of the last n gradients), `loss_scale_factor` (the loss is
multiplied by it before the gradients are taken, which are divided by it), `use_ema` (keep an
exponential moving average of the weights, `ema_momentum` 0.99, written into the weights every
`ema_overwrite_frequency` updates and by `finalize_variable_values` at the end of `fit`).
Gradients are clipped, weights decayed, the update applied, the average moved, then the step
count goes up by one.

The small weights of a model are packed into flat buffers when an optimizer is built
(`plexus.training.packing`), so that an update runs each rule once per buffer instead of once
per weight; `_update` receives either those buffers (`idx=None`) or the weights that have a
gradient this step with their indexes (when some have none, or with per-weight `clipnorm`).
"""
import math
import numbers

import torch

from plexus.training import schedules as S
from plexus.distribution import runtime as distributed
from plexus.training.packing import Packing, SlotList
from plexus.training.nograd import no_grad
from plexus.training.losses import unknown_name_error


_FOREACH = {torch.add: torch._foreach_add, torch.sqrt: torch._foreach_sqrt,
            torch.mul: torch._foreach_mul}


def _resolve_lr(lr):
    if isinstance(lr, (S.LearningRateSchedule,)) or callable(lr):
        return lr
    if isinstance(lr, torch.Tensor):
        lr = lr.item()
    if not isinstance(lr, (int, float)):
        raise TypeError(f"learning_rate must be a number or a schedule; received {lr!r}.")
    return float(lr)


# Hyperparameters the optimizers check when they are made: (lowest, highest, whether the
# highest is allowed). A value outside fails here, naming it, instead of at the first step.
_RANGES = {"beta_1": (0.0, 1.0, False), "beta_2": (0.0, 1.0, False), "rho": (0.0, 1.0, False),
           "momentum": (0.0, 1.0, True), "epsilon": (0.0, math.inf, True),
           "initial_accumulator_value": (0.0, math.inf, True),
           "weight_decay": (0.0, math.inf, True), "clipnorm": (0.0, math.inf, True),
           "clipvalue": (0.0, math.inf, True), "global_clipnorm": (0.0, math.inf, True)}
_OPTIONAL = ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm")


def _check_hyper(opt, **values):
    """A TypeError or ValueError naming the optimizer and the argument for a hyperparameter
    that is not a number in its range."""
    for name, value in values.items():
        if value is None and name in _OPTIONAL:
            continue
        low, high, closed = _RANGES[name]
        span = f"[{low:g}, {high:g}{']' if closed else ')'}"
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{type(opt).__name__}: {name} must be a number in {span}; "
                            f"received {value!r} of type {type(value).__name__}.")
        if not (low <= value <= high and (closed or value < high)):
            raise ValueError(f"{type(opt).__name__}: {name} must be in {span}; received "
                             f"{value!r}.")


class Optimizer:
    """Base class of the optimizers. Subclasses define `_build_slots` and `_update`.

    Args:
        learning_rate: a float or a `plexus.optimizers.schedules.LearningRateSchedule`.
        weight_decay: if set, decay weights by `weight_decay * lr` before each update.
        clipnorm: clip each gradient to this L2 norm.
        clipvalue: clip each gradient element to `[-clipvalue, clipvalue]`.
        global_clipnorm: clip all gradients together to this global L2 norm.
    """

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        kwargs.pop("decay", None)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) "
                            f"{', '.join(sorted(kwargs))}.")
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError("Pass at most one of `clipnorm` and `global_clipnorm`.")
        if use_ema and not 0 <= ema_momentum <= 1:
            raise ValueError(f"ema_momentum must be in the range [0, 1]; received "
                             f"{ema_momentum!r}.")
        if use_ema and ema_overwrite_frequency is not None and (
                not isinstance(ema_overwrite_frequency, int) or ema_overwrite_frequency < 1):
            raise ValueError("ema_overwrite_frequency must be an integer >= 1 or None; received "
                             f"{ema_overwrite_frequency!r}.")
        if gradient_accumulation_steps and (
                not isinstance(gradient_accumulation_steps, int) or gradient_accumulation_steps < 2):
            raise ValueError("gradient_accumulation_steps must be an integer >= 2 (or None); "
                             f"received {gradient_accumulation_steps!r}.")
        _check_hyper(self, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                     global_clipnorm=global_clipnorm)
        if loss_scale_factor is not None and not loss_scale_factor > 0:
            raise ValueError(f"loss_scale_factor must be a positive number (or None); received "
                             f"{loss_scale_factor!r}.")
        self.gradient_accumulation_steps = gradient_accumulation_steps or None
        self.loss_scale_factor = loss_scale_factor
        self.use_ema, self.ema_momentum = bool(use_ema), ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.name = name or type(self).__name__.lower()
        self._learning_rate = _resolve_lr(learning_rate)
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self._iterations = 0  # every step, also those that only accumulate gradients
        self.built = False
        self._vars, self._overwritten = [], []
        self._packing = None

    # ------------------------------------------------------------------ steps and rate
    @property
    def iterations(self):
        """How many updates were applied: the steps taken, divided by
        `gradient_accumulation_steps` when gradients accumulate."""
        n = self.gradient_accumulation_steps
        return self._iterations // n if n else self._iterations

    @iterations.setter
    def iterations(self, value):
        n = self.gradient_accumulation_steps
        self._iterations = int(value) * (n or 1)

    @property
    def learning_rate(self):
        """The rate the next update uses (a schedule is evaluated at the number of steps
        taken, accumulating ones included)."""
        lr = self._learning_rate
        return float(lr(self._iterations)) if callable(lr) else lr

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = _resolve_lr(value)

    lr = learning_rate

    # ------------------------------------------------------------------ building
    def bind_model(self, model):
        """Learn what the update rule needs to know about `model`'s weights beyond their
        values (`fit` calls this before `build`); most rules need nothing."""

    def build(self, var_list):
        """Create the optimizer's state (moments, accumulators) for `var_list`."""
        self._vars = list(var_list)
        # Weights made with add_weight(overwrite_with_gradient=True) take their gradient as
        # their new value instead of an update (as in Keras).
        self._overwritten = [i for i, v in enumerate(self._vars)
                             if getattr(v, "overwrite_with_gradient", False)]
        if self._overwritten and self.gradient_accumulation_steps:
            raise NotImplementedError(
                f"Optimizer {self.name!r}: gradient_accumulation_steps is not supported with "
                "weights created with overwrite_with_gradient=True.")
        self._packing = Packing(self._vars) if self._packable else None
        if self.use_ema:
            self._model_variables_moving_average = self._zeros(self._vars)
        self._build_slots(self._vars)
        if self.gradient_accumulation_steps:
            self._accumulated_gradients = self._zeros(self._vars)
        if any(not isinstance(getattr(self, name, None) or SlotList(), SlotList)
               for name in self._all_slot_names()):
            self._packing = None  # slots made by hand: update weight by weight
        self.built = True

    _packable = True  # whether `_update` handles packed buffers (`idx=None`)

    def _repack(self):
        """Pack again after some weight's storage was rebound elsewhere (moved to another
        device, packed by another optimizer): the weights keep their current values, the
        slots theirs."""
        old = {name: getattr(self, name) for name in self._all_slot_names()
               if getattr(self, name, None)}
        self._packing = Packing(self._vars)
        with torch.no_grad():
            for name, slots in old.items():
                new = self._zeros(self._vars)
                for n, o in zip(new, slots):
                    n.copy_(o)
                setattr(self, name, new)

    def _build_slots(self, params):
        pass

    def _zeros(self, params, fill=0.0):
        if self._packing is not None and len(params) == len(self._vars):
            return self._packing.slot(params, fill)
        return [torch.full_like(p, fill, memory_format=torch.preserve_format).detach()
                for p in params]

    # ------------------------------------------------------------------ applying
    def apply_gradients(self, grads_and_vars):
        """Apply `[(gradient, variable), ...]`; returns the iteration count."""
        pairs = list(grads_and_vars)
        return self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def apply(self, grads, trainable_variables=None):
        """Apply `grads` to `trainable_variables` (default: the variables it was built for)."""
        if trainable_variables is not None and not self.built:
            self.build(trainable_variables)
        params = self._vars if trainable_variables is None else list(trainable_variables)
        if len(params) != len(self._vars) or any(a is not b for a, b in zip(params, self._vars)):
            raise ValueError(
                f"Optimizer {self.name!r} was built for {len(self._vars)} variables and is asked "
                "to update others. Use one optimizer per model (or a new one)."
            )
        for p, g in zip(params, grads):
            p.grad = g
        self.step()
        return self.iterations

    @no_grad
    def step(self):
        """One update of the built variables from their `.grad` (clip, decay, update)."""
        by_wrapper = self.__dict__.pop("_gradients_averaged", False)  # (this step's only)
        averaged = distributed.collect_gradients(self._vars) or by_wrapper  # (or in backward)
        grads = [p.grad for p in self._vars]
        for i in self._overwritten:
            if grads[i] is not None:
                self._vars[i].copy_(grads[i])
                grads[i] = None
        pk = self._packing
        if pk is not None and not pk.intact():
            self._repack()
            pk = self._packing
        if (pk is not None and pk.active and self.clipnorm is None
                and not any(g is None for g in grads)):
            grads = pk.gather(grads)
            params, idx = pk.params(self._vars), None
        else:
            idx = [i for i, g in enumerate(grads) if g is not None]
            if not idx:
                return
            params = [self._vars[i] for i in idx]
            grads = [grads[i] for i in idx]
        # (one group, unless FSDP shards some weights: sharded and whole ones apart)
        for idx, params, grads in distributed.same_kind(idx, params, grads):
            if self.loss_scale_factor is not None:
                torch._foreach_div_(grads, float(self.loss_scale_factor))
            if not self.gradient_accumulation_steps or self._accumulate(idx, grads):
                if not averaged:
                    distributed.average_gradients(grads)  # (across processes, distributed)
                self._clip(grads)
                lr = self.learning_rate
                self._decay(idx, params, lr)
                self._update(idx, params, grads, lr)
        if self.use_ema:
            self._move_average()
        self._iterations += 1

    def _decay(self, idx, params, lr):
        """Decoupled weight decay before the update: `w -= w * weight_decay * lr`."""
        if self.weight_decay:
            torch._foreach_mul_(params, 1.0 - self.weight_decay * lr)

    def _ema_pairs(self):
        """The weights and their averages, as buffers when packed."""
        avg = self._model_variables_moving_average
        if self._packing is not None and getattr(avg, "packed", None) is not None:
            return self._packing.params(self._vars), avg.packed
        return self._vars, list(avg)

    def _move_average(self):
        """`average = m * average + (1 - m) * weight` after every step (the average starts as
        the weights themselves); every `ema_overwrite_frequency` updates the weights take the
        average's value."""
        params, avg = self._ema_pairs()
        momentum = self.ema_momentum if self.iterations else 0.0
        torch._foreach_lerp_(avg, params, 1.0 - momentum)
        freq = self.ema_overwrite_frequency
        if freq and (self.iterations + 1) % freq == 0:
            torch._foreach_copy_(params, avg)

    @torch.no_grad()
    def finalize_variable_values(self, var_list):
        """At the end of training: with `use_ema`, the weights `var_list` take their moving
        averages' values (`fit` calls this)."""
        if not self.use_ema or not self.built:
            return
        var_list = list(var_list)
        if len(var_list) != len(self._vars):
            raise ValueError(f"finalize_variable_values: {len(var_list)} variables given, but "
                             f"the optimizer averages {len(self._vars)}.")
        torch._foreach_copy_(var_list, list(self._model_variables_moving_average))

    def _accumulate(self, idx, grads):
        """Add `grads` to the accumulated gradients. On every n-th step, replace the items of
        the list `grads` by the mean of the last n gradients, reset the sums and return True."""
        acc = self._slots("_accumulated_gradients", idx)
        n = self.gradient_accumulation_steps
        if (self._iterations + 1) % n:
            torch._foreach_add_(acc, grads)
            return False
        grads[:] = torch._foreach_add(grads, acc)  # new tensors: `.grad`s stay as they were
        torch._foreach_div_(grads, float(n))
        torch._foreach_zero_(acc)
        return True

    def scale_loss(self, loss):
        """The loss a training step takes gradients of: `loss * loss_scale_factor` when one is
        set (the update divides the gradients by it again)."""
        return loss if self.loss_scale_factor is None else loss * self.loss_scale_factor

    def _clip(self, grads):
        if self.clipvalue is not None:
            torch._foreach_clamp_min_(grads, -self.clipvalue)
            torch._foreach_clamp_max_(grads, self.clipvalue)
        if self.clipnorm is not None:
            norms = torch._foreach_norm(grads)
            scales = [self.clipnorm / torch.clamp(n, min=self.clipnorm) for n in norms]
            torch._foreach_mul_(grads, scales)
        if self.global_clipnorm is not None:
            total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            torch._foreach_mul_(grads, self.global_clipnorm /
                                torch.clamp(total, min=self.global_clipnorm))

    def _update(self, idx, params, grads, lr):
        raise NotImplementedError

    def _into(self, idx, name, fn, tensors, *args):
        """`fn(t, *args)` for each of `tensors`. On the packed path (`idx` None) the results go
        into work buffers kept from one update to the next: a temporary as large as a big
        weight, allocated anew at every step, costs a page fault per 4 KiB on every step."""
        if idx is not None:
            return _FOREACH[fn](tensors, *args)
        work = self.__dict__.setdefault("_work", {})
        src, bufs = work.get(name, (None, None))
        if src is not tensors:  # (the packed lists stay the same objects until a repack)
            if bufs is None or len(bufs) != len(tensors) or any(
                    b.shape != t.shape or b.dtype != t.dtype or b.device != t.device
                    for b, t in zip(bufs, tensors)):
                bufs = [torch.empty_like(t) for t in tensors]
            work[name] = (tensors, bufs)
        for b, t in zip(bufs, tensors):
            fn(t, *args, out=b)
        return bufs

    def _slots(self, name, idx):
        """Slot `name` for the weights being updated: the packed buffers when `idx` is None,
        else the tensors of the weights at `idx`."""
        slots = getattr(self, name)
        if idx is None:
            return slots.packed
        return [slots[i] for i in idx]

    # ------------------------------------------------------------------ state and config
    @property
    def variables(self):
        """The optimizer's state tensors in Keras's order (without `iterations` and the
        learning rate): slots created together are interleaved per weight
        (`m_0, v_0, m_1, v_1`), groups follow one another."""
        out = list(getattr(self, "_model_variables_moving_average", None) or []) \
            if self.use_ema else []
        if self.gradient_accumulation_steps:
            out += list(getattr(self, "_accumulated_gradients", None) or [])
        for group in self._slot_groups():
            lists = [getattr(self, name, []) for name in group]
            for per_weight in zip(*lists):
                out.extend(t for t in per_weight if t is not None)
        return out + self._extra_variables()

    def _slot_groups(self):
        return tuple((name,) for name in self._slot_names())

    def _slot_names(self):
        return ()

    def _all_slot_names(self):
        ema = ("_model_variables_moving_average",) if self.use_ema else ()
        acc = ("_accumulated_gradients",) if self.gradient_accumulation_steps else ()
        return ema + acc + self._slot_names()

    def _extra_variables(self):
        return []

    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, S.LearningRateSchedule):
            lr = S.serialize(lr)
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue, "use_ema": self.use_ema,
                "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = S.deserialize(config["learning_rate"], custom_objects)
        config.pop("is_legacy_optimizer", None)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} learning_rate={self._learning_rate}>"


class SGD(Optimizer):
    """Gradient descent with optional momentum: `m = momentum * m - lr * g; w += m`
    (Nesterov: `w += momentum * m - lr * g`)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _check_hyper(self, momentum=momentum)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _build_slots(self, params):
        self.momentums = self._zeros(params) if self.momentum else []

    def _slot_names(self):
        return ("momentums",)

    def _update(self, idx, params, grads, lr):
        if not self.momentum:
            torch._foreach_add_(params, grads, alpha=-lr)
            return
        bufs = self._slots("momentums", idx)
        torch._foreach_mul_(bufs, self.momentum)
        torch._foreach_add_(bufs, grads, alpha=-lr)
        if self.nesterov:
            torch._foreach_add_(params, grads, alpha=-lr)
            torch._foreach_add_(params, bufs, alpha=self.momentum)
        else:
            torch._foreach_add_(params, bufs)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """`v = rho * v + (1 - rho) * g**2; w -= lr * g / sqrt(v + epsilon)` (epsilon inside the
    root), optionally centered and with momentum."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _check_hyper(self, rho=rho, momentum=momentum, epsilon=epsilon)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _build_slots(self, params):
        self.velocities = self._zeros(params)
        self.momentums = self._zeros(params) if self.momentum > 0 else []
        self.average_gradients = self._zeros(params) if self.centered else []

    def _slot_names(self):
        return ("velocities", "momentums", "average_gradients")

    def _update(self, idx, params, grads, lr):
        rho = self.rho
        vel = self._slots("velocities", idx)
        torch._foreach_mul_(vel, rho)
        torch._foreach_addcmul_(vel, grads, grads, value=1 - rho)
        denom = self._into(idx, "denom", torch.add, vel, self.epsilon)
        if self.centered:
            avg = self._slots("average_gradients", idx)
            torch._foreach_mul_(avg, rho)
            torch._foreach_add_(avg, grads, alpha=1 - rho)
            torch._foreach_addcmul_(denom, avg, avg, value=-1)
        torch._foreach_sqrt_(denom)
        if self.momentum > 0:
            mom = self._slots("momentums", idx)
            torch._foreach_mul_(mom, self.momentum)
            torch._foreach_addcdiv_(mom, grads, denom, value=lr)
            torch._foreach_sub_(params, mom)
        else:
            torch._foreach_addcdiv_(params, grads, denom, value=-lr)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class _Adam(Optimizer):
    """Adam's update on torch's multi-tensor kernels.

    Keras adds epsilon to `sqrt(v)` and folds both bias corrections into the step size;
    `torch.optim.Adam` adds epsilon after correcting `v`, so the rule is written out here.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _check_hyper(self, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def _build_slots(self, params):
        self.momentums, self.velocities = self._zeros(params), self._zeros(params)
        self.velocity_hats = self._zeros(params) if self.amsgrad else []

    def _slot_names(self):
        return ("momentums", "velocities", "velocity_hats")

    def _slot_groups(self):
        return (("momentums", "velocities"), ("velocity_hats",))

    def _update(self, idx, params, grads, lr):
        b1, b2 = self.beta_1, self.beta_2
        t = self.iterations + 1
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m, v = self._slots("momentums", idx), self._slots("velocities", idx)
        torch._foreach_lerp_(m, grads, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        if self.amsgrad:
            v_hat = self._slots("velocity_hats", idx)
            torch._foreach_maximum_(v_hat, v)
            v = v_hat
        denom = self._into(idx, "denom", torch.sqrt, v)
        torch._foreach_add_(denom, self.epsilon)
        torch._foreach_addcdiv_(params, m, denom, value=-alpha)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class Adam(_Adam):
    """Adam: moment estimates `m`, `v`; `w -= lr * sqrt(1 - b2**t) / (1 - b1**t) * m /
    (sqrt(v) + epsilon)`. Defaults: learning_rate 0.001, beta_1 0.9, beta_2 0.999,
    epsilon 1e-7."""


class AdamW(_Adam):
    """Adam with decoupled weight decay (`weight_decay=0.004` by default)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW needs a weight_decay (a float); received None.")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad, weight_decay=weight_decay, **kwargs)


class Adagrad(Optimizer):
    """`acc += g**2; w -= lr * g / sqrt(acc + epsilon)`, `acc` starting at
    `initial_accumulator_value` (0.1)."""

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _check_hyper(self, initial_accumulator_value=initial_accumulator_value, epsilon=epsilon)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def _build_slots(self, params):
        self.accumulators = self._zeros(params, self.initial_accumulator_value)

    def _slot_names(self):
        return ("accumulators",)

    def _update(self, idx, params, grads, lr):
        acc = self._slots("accumulators", idx)
        torch._foreach_addcmul_(acc, grads, grads)
        denom = self._into(idx, "denom", torch.add, acc, self.epsilon)
        torch._foreach_sqrt_(denom)
        torch._foreach_addcdiv_(params, grads, denom, value=-lr)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon,
                "initial_accumulator_value": self.initial_accumulator_value}


class Adadelta(Optimizer):
    """Adadelta: `v = rho * v + (1 - rho) * g**2`; `d = -sqrt(u + eps) / sqrt(v + eps) * g`;
    `u = rho * u + (1 - rho) * d**2`; `w += lr * d` (rho 0.95, epsilon 1e-7, lr 0.001)."""

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _check_hyper(self, rho=rho, epsilon=epsilon)
        self.rho, self.epsilon = rho, epsilon

    def _build_slots(self, params):
        self.accumulated_grads = self._zeros(params)
        self.accumulated_delta_vars = self._zeros(params)

    def _slot_names(self):
        return ("accumulated_grads", "accumulated_delta_vars")

    def _slot_groups(self):
        return (self._slot_names(),)

    def _update(self, idx, params, grads, lr):
        rho = self.rho
        acc_g = self._slots("accumulated_grads", idx)
        acc_d = self._slots("accumulated_delta_vars", idx)
        torch._foreach_mul_(acc_g, rho)
        torch._foreach_addcmul_(acc_g, grads, grads, value=1 - rho)
        num = torch._foreach_add(acc_d, self.epsilon)
        torch._foreach_sqrt_(num)
        den = torch._foreach_add(acc_g, self.epsilon)
        torch._foreach_sqrt_(den)
        delta = torch._foreach_div(num, den)
        torch._foreach_mul_(delta, grads)
        torch._foreach_mul_(acc_d, rho)
        torch._foreach_addcmul_(acc_d, delta, delta, value=1 - rho)
        torch._foreach_add_(params, delta, alpha=-lr)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adamax(Optimizer):
    """Adam on the infinity norm: `u = max(beta_2 * u, |g|)`;
    `w -= lr * m / ((1 - beta_1**t) * (u + epsilon))`."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _check_hyper(self, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _build_slots(self, params):
        self.m, self.u = self._zeros(params), self._zeros(params)

    def _slot_names(self):
        return ("m", "u")

    def _slot_groups(self):
        return (self._slot_names(),)

    def _update(self, idx, params, grads, lr):
        m, u = self._slots("m", idx), self._slots("u", idx)
        t = self.iterations + 1
        torch._foreach_mul_(m, self.beta_1)
        torch._foreach_add_(m, grads, alpha=1 - self.beta_1)
        torch._foreach_mul_(u, self.beta_2)
        torch._foreach_maximum_(u, torch._foreach_abs(grads))
        denom = torch._foreach_add(u, self.epsilon)
        torch._foreach_addcdiv_(params, m, denom, value=-lr / (1 - self.beta_1 ** t))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Adam with Nesterov momentum (Dozat), with Keras's momentum schedule
    `u_t = beta_1 * (1 - 0.5 * 0.96 ** t)`."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _check_hyper(self, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.u_product = torch.ones(())  # product of the momentum schedule, kept on the host

    def _build_slots(self, params):
        self.momentums, self.velocities = self._zeros(params), self._zeros(params)
        self.u_product = torch.ones(())

    def _slot_names(self):
        return ("momentums", "velocities")

    def _slot_groups(self):
        return (self._slot_names(),)

    def _extra_variables(self):
        return [self.u_product]

    def _update(self, idx, params, grads, lr):
        b1, b2 = self.beta_1, self.beta_2
        t = self.iterations + 1
        u_t = b1 * (1.0 - 0.5 * 0.96 ** t)
        u_t1 = b1 * (1.0 - 0.5 * 0.96 ** (t + 1))
        u_prod = float(self.u_product) * u_t
        self.u_product.fill_(u_prod)
        u_prod1 = u_prod * u_t1
        m, v = self._slots("momentums", idx), self._slots("velocities", idx)
        torch._foreach_mul_(m, b1)
        torch._foreach_add_(m, grads, alpha=1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        m_hat = torch._foreach_mul(m, u_t1 / (1 - u_prod1))
        torch._foreach_add_(m_hat, grads, alpha=(1 - u_t) / (1 - u_prod))
        denom = torch._foreach_mul(v, 1.0 / (1 - b2 ** t))
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, self.epsilon)
        torch._foreach_addcdiv_(params, m_hat, denom, value=-lr)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


# (optimizers_more builds on Optimizer, so it is imported once that exists)
from plexus.training import optimizers_more  # noqa: E402

_CLASSES = (SGD, RMSprop, Adam, AdamW, Adagrad, Adadelta, Adamax, Nadam) + \
    tuple(optimizers_more.CLASSES)
BY_NAME = {c.__name__.lower(): c for c in _CLASSES}
BY_NAME.update({c.__name__: c for c in _CLASSES})
BY_NAME["schedule_free_adamw"] = optimizers_more.ScheduleFreeAdamW


def get(identifier):
    """An optimizer from a name (`"adam"`), a config dict, a class or an optimizer."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = BY_NAME.get(identifier) or BY_NAME.get(identifier.lower())
        if cls is None:
            raise unknown_name_error("optimizer", identifier, [k for k in BY_NAME if k.islower()])
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = BY_NAME.get(identifier["class_name"])
        if cls is None:
            raise unknown_name_error("optimizer", identifier["class_name"], BY_NAME)
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, torch.optim.Optimizer):
        raise TypeError(
            "compile() takes a plexus optimizer (plexus.optimizers.Adam(...)) or a name; a "
            "torch.optim optimizer cannot be used here. Its Keras-named twin is in "
            "plexus.optimizers."
        )
    raise TypeError(f"Cannot interpret {identifier!r} as an optimizer: pass a name such as "
                    "'adam' or a plexus.optimizers.Optimizer.")


def serialize(optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config, custom_objects=None):
    cls = (custom_objects or {}).get(config["class_name"]) or BY_NAME.get(config["class_name"])
    if cls is None:
        raise unknown_name_error("optimizer", config["class_name"], BY_NAME)
    return cls.from_config(config.get("config", {}), custom_objects)
