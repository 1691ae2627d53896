"""More optimizers with Keras's names, defaults, update rules and slot order: Lion, Ftrl and
ScheduleFreeAdamW (elementwise rules, run on packed buffers), Lamb, Adafactor and Muon (rules
that need each weight's norm or shape, run weight by weight).

Adafactor and Muon look at a weight's shape as Keras stores it (a Conv2D kernel as
`(kh, kw, in, out)`): `bind_model` tells them how each weight of a model converts, and
`fit` calls it.
"""
import math
import re

import torch

from plexus.training.optimizers import Optimizer


def _identity(t):
    return t


class Lion(Optimizer):
    """Lion (evoLved sIgn mOmeNtum): `w -= lr * sign(beta_1 * m + (1 - beta_1) * g)`, then
    `m = beta_2 * m + (1 - beta_2) * g`. Use a learning rate 3-10x smaller than Adam's.

    Args:
        beta_1: the interpolation for the update's sign (0.9).
        beta_2: the decay of the momentum (0.99).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if not 0 < beta_1 <= 1:
            raise ValueError(f"Lion: beta_1 must be in (0, 1] (else Lion is signSGD); received "
                             f"{beta_1!r}.")
        self.beta_1, self.beta_2 = beta_1, beta_2

    def _build_slots(self, params):
        self.momentums = self._zeros(params)

    def _slot_names(self):
        return ("momentums",)

    def _update(self, idx, params, grads, lr):
        m = self._slots("momentums", idx)
        direction = self._into(idx, "direction", torch.mul, m, self.beta_1)
        torch._foreach_add_(direction, grads, alpha=1 - self.beta_1)
        torch._foreach_sign_(direction)
        torch._foreach_add_(params, direction, alpha=-lr)
        torch._foreach_lerp_(m, grads, 1 - self.beta_2)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}


class Ftrl(Optimizer):
    """Follow The Regularized Leader (McMahan et al.), with L1, L2 and L2-shrinkage
    penalties, as used for large sparse linear models.

    Args:
        learning_rate_power: how the rate falls as gradients accumulate (-0.5; <= 0).
        initial_accumulator_value: the accumulators' start (0.1; >= 0).
        l1_regularization_strength, l2_regularization_strength: penalties (>= 0).
        l2_shrinkage_regularization_strength: an L2 penalty on the gradient side (>= 0).
        beta: added to the L2 strength as `beta / (2 * lr)`.
    """

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5,
                 initial_accumulator_value=0.1, l1_regularization_strength=0.0,
                 l2_regularization_strength=0.0, l2_shrinkage_regularization_strength=0.0,
                 beta=0.0, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        for name, value in (("initial_accumulator_value", initial_accumulator_value),
                            ("l1_regularization_strength", l1_regularization_strength),
                            ("l2_regularization_strength", l2_regularization_strength),
                            ("l2_shrinkage_regularization_strength",
                             l2_shrinkage_regularization_strength)):
            if value < 0.0:
                raise ValueError(f"Ftrl: {name} must be positive or zero; received {value!r}.")
        if learning_rate_power > 0.0:
            raise ValueError(f"Ftrl: learning_rate_power must be negative or zero; received "
                             f"{learning_rate_power!r}.")
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def _build_slots(self, params):
        self.accumulators = self._zeros(params, self.initial_accumulator_value)
        self.linears = self._zeros(params)

    def _slot_names(self):
        return ("accumulators", "linears")

    def _slot_groups(self):
        return (self._slot_names(),)

    def _update(self, idx, params, grads, lr):
        acc, linear = self._slots("accumulators", idx), self._slots("linears", idx)
        power = -self.learning_rate_power
        l1 = self.l1_regularization_strength
        l2 = self.l2_regularization_strength + self.beta / (2.0 * lr)
        new_acc = torch._foreach_addcmul(acc, grads, grads)
        old_scale = torch._foreach_pow(acc, power)
        new_scale = torch._foreach_pow(new_acc, power)
        # linear += g + 2 * shrinkage * w - (new_acc^p - acc^p) / lr * w
        torch._foreach_add_(linear, grads)
        if self.l2_shrinkage_regularization_strength:
            torch._foreach_add_(linear, params,
                                alpha=2 * self.l2_shrinkage_regularization_strength)
        torch._foreach_sub_(old_scale, new_scale)
        torch._foreach_div_(old_scale, lr)
        torch._foreach_addcmul_(linear, old_scale, params)
        # w = (clip(linear, -l1, l1) - linear) / (new_acc^p / lr + 2 * l2)
        torch._foreach_div_(new_scale, lr)
        torch._foreach_add_(new_scale, 2 * l2)
        clipped = torch._foreach_clamp_min(linear, -l1)
        torch._foreach_clamp_max_(clipped, l1)
        torch._foreach_sub_(clipped, linear)
        torch._foreach_div_(clipped, new_scale)
        torch._foreach_copy_(params, clipped)
        torch._foreach_copy_(acc, new_acc)

    def get_config(self):
        return {**super().get_config(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength":
                    self.l2_shrinkage_regularization_strength,
                "beta": self.beta}


class ScheduleFreeAdamW(Optimizer):
    """Schedule-Free AdamW (Defazio et al., 2024): no learning-rate schedule needed; the
    weights are an interpolation between an Adam-updated sequence `z` (the `momentums`,
    starting at the weights) and its running average `x`.

    Args:
        beta_1: the interpolation between `z` and `x` (0.9).
        beta_2: the decay of the squared-gradient average (0.999).
        epsilon: added to the denominator (1e-8).
        warmup_steps: the rate rises linearly from 0 over this many steps.
    """

    def __init__(self, learning_rate=0.0025, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 warmup_steps=0, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2 = beta_1, beta_2
        self.epsilon, self.warmup_steps = epsilon, warmup_steps

    def _build_slots(self, params):
        self.momentums, self.velocities = self._zeros(params), self._zeros(params)
        with torch.no_grad():
            torch._foreach_copy_(list(self.momentums), [p.detach() for p in params])

    def _slot_names(self):
        return ("momentums", "velocities")

    def _slot_groups(self):
        return (self._slot_names(),)

    def _update(self, idx, params, grads, lr):
        b1, b2 = self.beta_1, self.beta_2
        t = self.iterations + 1
        if self.warmup_steps > 0:
            lr = lr * min(t / self.warmup_steps, 1.0)
        z, v = self._slots("momentums", idx), self._slots("velocities", idx)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        denom = self._into(idx, "denom", torch.mul, v, 1.0 / (1 - b2 ** t))
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, self.epsilon)
        torch._foreach_addcdiv_(z, grads, denom, value=-lr)
        # x, recovered from the weights y = (1 - b1) z + b1 x, moves towards z by 1 / t; the
        # weights become (1 - b1) z + b1 x again. (As Keras computes it on its torch backend,
        # x is recovered with the z just updated.)
        weight = 1.0 / t
        x = torch._foreach_sub(params, torch._foreach_mul(z, 1 - b1))
        torch._foreach_mul_(x, (1 - weight) / b1)
        torch._foreach_add_(x, z, alpha=weight)
        torch._foreach_mul_(x, b1)
        torch._foreach_add_(x, z, alpha=1 - b1)
        torch._foreach_copy_(params, x)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "warmup_steps": self.warmup_steps}


class Lamb(Optimizer):
    """LAMB: Adam's step rescaled per weight by `||w|| / ||step||` (layer-wise adaptive
    rates, for large batches).

    Args:
        beta_1, beta_2, epsilon: as in Adam (0.9, 0.999, 1e-7).
    """

    _packable = False  # the rescaling needs each weight's own norm

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _build_slots(self, params):
        self.momentums, self.velocities = self._zeros(params), self._zeros(params)

    def _slot_names(self):
        return ("momentums", "velocities")

    def _slot_groups(self):
        return (self._slot_names(),)

    def _update(self, idx, params, grads, lr):
        t = self.iterations + 1
        m, v = self._slots("momentums", idx), self._slots("velocities", idx)
        torch._foreach_lerp_(m, grads, 1 - self.beta_1)
        torch._foreach_mul_(v, self.beta_2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - self.beta_2)
        step = torch._foreach_div(m, 1.0 - self.beta_1 ** t)
        denom = torch._foreach_div(v, 1.0 - self.beta_2 ** t)
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, self.epsilon)
        torch._foreach_div_(step, denom)
        w_norms, s_norms = torch._foreach_norm(params), torch._foreach_norm(step)
        ratios = [torch.where((w > 0) & (s > 0), w / torch.where(s > 0, s, torch.ones_like(s)),
                              torch.ones_like(w)) * -lr for w, s in zip(w_norms, s_norms)]
        torch._foreach_mul_(step, ratios)
        torch._foreach_add_(params, step)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class _ModelAware(Optimizer):
    """An optimizer whose rule depends on how Keras stores a weight (its shape, its path):
    `bind_model(model)` records, per weight, the conversion to Keras's layout and the path."""

    _packable = False

    def bind_model(self, model):
        """Learn each trainable weight's Keras layout and path from `model`."""
        layouts, paths = {}, {}
        for layer, w in model._weight_entries():
            p = getattr(layer, w.attr)
            layouts[id(p)] = (w.to_keras, w.to_torch)
            paths[id(p)] = f"{layer.name}/{w.name}"
        self._layouts, self._paths = layouts, paths

    def _layout(self, p):
        return getattr(self, "_layouts", {}).get(id(p), (_identity, _identity))

    def _path(self, p):
        path = getattr(self, "_paths", {}).get(id(p))
        return path if path is not None else str(getattr(p, "path", ""))

    def _keras_shape(self, p):
        return tuple(self._layout(p)[0](p.detach()).shape)


class Adafactor(_ModelAware):
    """Adafactor (Shazeer & Stern): Adam-like steps whose second moments are factored into
    row and column averages for weights of 2 or more dimensions (memory linear in the
    sides instead of their product); each step is clipped to an RMS of `clip_threshold` and
    scaled by the weight's own RMS.

    Args:
        beta_2_decay: the second-moment decay is `1 - t ** beta_2_decay` (-0.8).
        epsilon_1: added to squared gradients (1e-30).
        epsilon_2: the least weight RMS the step scales by (1e-3).
        clip_threshold: the largest RMS of a step before scaling (1.0).
        relative_step: cap a constant rate at `1 / sqrt(t)` (Keras's steps are capped so in
            any case).
    """

    def __init__(self, learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3,
                 clip_threshold=1.0, relative_step=True, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_2_decay, self.epsilon_1, self.epsilon_2 = beta_2_decay, epsilon_1, epsilon_2
        self.clip_threshold, self.relative_step = clip_threshold, relative_step

    def _build_slots(self, params):
        self._r, self._c, self._v = [], [], []
        for p in params:
            shape = self._keras_shape(p)
            kw = dict(dtype=p.dtype, device=p.device)
            if len(shape) < 2:
                self._r.append(torch.zeros((), **kw))
                self._c.append(torch.zeros((), **kw))
            else:
                self._r.append(torch.zeros(shape[:-1], **kw))
                self._c.append(torch.zeros(shape[:-2] + shape[-1:], **kw))
            self._v.append(torch.zeros(shape, **kw))

    def _slot_names(self):
        return ("_r", "_c", "_v")

    def _slot_groups(self):
        return (self._slot_names(),)

    def _update(self, idx, params, grads, lr):
        t = self.iterations + 1
        rho = min(lr, 1 / math.sqrt(t))
        beta = 1 - t ** self.beta_2_decay
        for i, p, g in zip(idx, params, grads):
            to_keras, to_torch = self._layout(p)
            w, g = to_keras(p), to_keras(g)
            r, c, v = self._r[i], self._c[i], self._v[i]
            alpha = torch.clamp(torch.sqrt(torch.mean(w * w)), min=self.epsilon_2) * rho
            g2 = g * g + self.epsilon_1
            if w.dim() >= 2:
                r.lerp_(torch.mean(g2, dim=-1), 1 - beta)
                c.lerp_(torch.mean(g2, dim=-2), 1 - beta)
                v.copy_((r / torch.mean(r, dim=-1, keepdim=True)).unsqueeze(-1) * c.unsqueeze(-2))
            else:
                v.lerp_(g2, 1 - beta)
            u = g / torch.sqrt(v)
            u = u / torch.clamp(torch.sqrt(torch.mean(u * u)) / self.clip_threshold, min=1.0)
            p.sub_(to_torch(alpha * u))

    def get_config(self):
        return {**super().get_config(), "beta_2_decay": self.beta_2_decay,
                "epsilon_1": self.epsilon_1, "epsilon_2": self.epsilon_2,
                "clip_threshold": self.clip_threshold, "relative_step": self.relative_step}


class Muon(_ModelAware):
    """Muon (MomentUm Orthogonalized by Newton-schulz) for 2-D weights: a momentum step made
    nearly orthogonal by `ns_steps` Newton-Schulz iterations; other weights (biases,
    convolution kernels, embeddings, layers matching `exclude_layers`) take AdamW steps.

    Args:
        adam_beta_1, adam_beta_2, epsilon: the AdamW part's moments (0.9, 0.999, 1e-7).
        adam_weight_decay: the AdamW part's decay (0.004); `weight_decay` is Muon's.
        exclude_layers: regular expressions; weights whose path matches take AdamW steps.
        exclude_embeddings: give embedding weights AdamW steps (True).
        muon_a, muon_b, muon_c: the Newton-Schulz polynomial's coefficients.
        adam_lr_ratio: the AdamW part's rate relative to `learning_rate` (1).
        momentum: Muon's momentum (0.95), with `nesterov` (True).
        rms_rate: Muon steps are scaled by `sqrt(max(rows, cols)) * rms_rate` (0.2; None: no
            scaling), so that one rate suits both parts.
    """

    def __init__(self, learning_rate=0.001, adam_beta_1=0.9, adam_beta_2=0.999,
                 adam_weight_decay=0.004, epsilon=1e-7, weight_decay=0.004, exclude_layers=None,
                 exclude_embeddings=True, muon_a=3.4445, muon_b=-4.775, muon_c=2.0315,
                 adam_lr_ratio=1, momentum=0.95, ns_steps=5, nesterov=True, rms_rate=0.2,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
        self.adam_beta_1, self.adam_beta_2, self.epsilon = adam_beta_1, adam_beta_2, epsilon
        self.adam_weight_decay, self.adam_lr_ratio = adam_weight_decay, adam_lr_ratio
        self.exclude_layers, self.exclude_embeddings = exclude_layers or [], exclude_embeddings
        self.muon_a, self.muon_b, self.muon_c = muon_a, muon_b, muon_c
        self.momentum, self.ns_steps, self.nesterov = momentum, ns_steps, nesterov
        self.rms_rate = rms_rate

    def _uses_adam(self, p):
        if len(self._keras_shape(p)) != 2:
            return True
        path = self._path(p)
        if self.exclude_embeddings and "embedding" in path.lower():
            return True
        return any(re.search(pattern, path) for pattern in self.exclude_layers)

    def _build_slots(self, params):
        self.momentums = self._zeros(params)
        self.adam_velocities = [torch.zeros_like(p) if self._uses_adam(p) else None
                                for p in params]

    def _slot_names(self):
        return ("momentums", "adam_velocities")

    def _slot_groups(self):
        return (self._slot_names(),)

    def _decay(self, idx, params, lr):
        for p in params:
            wd = self.adam_weight_decay if self._uses_adam(p) else self.weight_decay
            if wd:
                p.mul_(1.0 - wd * lr)

    def _update(self, idx, params, grads, lr):
        t = self.iterations + 1
        for i, p, g in zip(idx, params, grads):
            m, v = self.momentums[i], self.adam_velocities[i]
            if v is not None:
                self._adam_step(p, g, m, v, lr * self.adam_lr_ratio, t)
            else:
                self._muon_step(p, g, m, lr)

    def _adam_step(self, p, g, m, v, lr, t):
        b1, b2 = self.adam_beta_1, self.adam_beta_2
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m.lerp_(g, 1 - b1)
        v.lerp_(g * g, 1 - b2)
        p.addcdiv_(m, torch.sqrt(v).add_(self.epsilon), value=-alpha)

    def _muon_step(self, p, g, m, lr):
        m.mul_(self.momentum).add_(g)
        direction = g + self.momentum * m if self.nesterov else m
        update = self._orthogonalize(direction) * lr
        if self.rms_rate is not None:
            update = update * (math.sqrt(max(update.shape[0], update.shape[1])) * self.rms_rate)
        p.sub_(update)

    def _orthogonalize(self, x):
        """The quintic Newton-Schulz iteration towards the orthogonal factor of `x` (its
        singular values pushed towards 1), on the wide orientation of the matrix."""
        tall = x.shape[-2] > x.shape[-1]
        if tall:
            x = x.transpose(-2, -1)
        x = x / (torch.linalg.matrix_norm(x, keepdim=True) + 1e-7)
        a, b, c = self.muon_a, self.muon_b, self.muon_c
        for _ in range(self.ns_steps):
            gram = x @ x.transpose(-2, -1)
            x = a * x + (b * gram + c * gram @ gram) @ x
        return x.transpose(-2, -1) if tall else x

    def get_config(self):
        return {**super().get_config(), "adam_beta_1": self.adam_beta_1,
                "adam_beta_2": self.adam_beta_2, "epsilon": self.epsilon,
                "exclude_layers": self.exclude_layers, "muon_a": self.muon_a,
                "muon_b": self.muon_b, "muon_c": self.muon_c,
                "adam_lr_ratio": self.adam_lr_ratio, "momentum": self.momentum,
                "ns_steps": self.ns_steps, "nesterov": self.nesterov,
                "exclude_embeddings": self.exclude_embeddings,
                "adam_weight_decay": self.adam_weight_decay, "rms_rate": self.rms_rate}


CLASSES = [Lion, Ftrl, ScheduleFreeAdamW, Lamb, Adafactor, Muon]
