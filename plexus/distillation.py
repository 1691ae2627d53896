"""Knowledge distillation, as `keras.distillation`: a `Distiller` model trains a student on
its labels and on a frozen teacher's outputs (`LogitsDistillation`) or intermediate features
(`FeatureDistillation`).

    distiller = Distiller(teacher, student, LogitsDistillation(temperature=3.0),
                          student_loss_weight=0.5)
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    distiller.fit(x, y)          # logs loss, student_loss, distillation_loss, total_loss
"""
import torch

from plexus import losses as losses_lib
from plexus import tree
from plexus.models.model import Model


def _loss_function(item):
    """A loss from a name (`plexus.losses.get`), a loss object or function, or None."""
    if item is None:
        return None
    if isinstance(item, str):
        return losses_lib.get(item)  # (an unknown name is its ValueError)
    return item


def _loss_from_config(config):
    """A loss (or a structure of them) from its saved form: names, config dicts (functions
    included), lists."""
    from plexus.saving.serialization import deserialize_keras_object
    return tree.map_structure(_loss_function, deserialize_keras_object(config)) \
        if not isinstance(config, str) else _loss_function(config)


def _sum(values):
    flat = [v if isinstance(v, torch.Tensor) else torch.tensor(float(v))
            for v in tree.flatten(values)]
    device = next((v.device for v in flat if v.device.type != "cpu"), flat[0].device)
    return torch.stack([v.to(device).float() for v in flat]).sum()


def _all_none(structure):
    return all(v is None for v in tree.flatten(structure))


class DistillationLoss:
    """Base of the distillation losses: `compute_loss(teacher_outputs, student_outputs)`
    returns a scalar; subclasses define it."""

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define compute_loss().")

    def validate_outputs(self, teacher_outputs, student_outputs):
        """Raise a ValueError when the two outputs do not have the same structure."""
        tree.assert_same_structure(teacher_outputs, student_outputs)

    def validate_model_compatibility(self, teacher, student):
        """Raise a ValueError when the loss cannot apply to these models."""


class FeatureDistillation(DistillationLoss):
    """The student's features (a named layer's output, or the final outputs) are pulled
    towards the teacher's by `loss` (`"mse"` by default; a structure of losses for
    structured outputs, None entries skipped).

    Args:
        loss: a loss name, object or function, or a structure of them.
        teacher_layer_name: the teacher layer whose output is the target (final outputs when
            None).
        student_layer_name: the student layer whose output is compared.
    """

    def __init__(self, loss="mse", teacher_layer_name=None, student_layer_name=None):
        self.teacher_layer_name, self.student_layer_name = teacher_layer_name, \
            student_layer_name
        self.loss = tree.map_structure(_loss_function, loss)
        if _all_none(self.loss):
            raise ValueError("FeatureDistillation: `loss` must hold at least one loss that is "
                             "not None.")

    def validate_model_compatibility(self, teacher, student):
        if self.teacher_layer_name is None and self.student_layer_name is None:
            return
        subclassed = [role for role, m in (("teacher", teacher), ("student", student))
                      if getattr(m, "inputs", None) is None]
        if subclassed:
            raise ValueError(
                f"FeatureDistillation with layer names needs Functional or Sequential models; "
                f"the {' and '.join(subclassed)} model(s) have no symbolic inputs. Use "
                "FeatureDistillation without layer names, or LogitsDistillation.")
        for role, model, name in (("teacher", teacher, self.teacher_layer_name),
                                  ("student", student, self.student_layer_name)):
            if name is not None:
                try:
                    model.get_layer(name=name)
                except ValueError as e:
                    raise ValueError(f"In {role} model: {e}") from None

    def validate_outputs(self, teacher_outputs, student_outputs):
        super().validate_outputs(teacher_outputs, student_outputs)
        try:
            tree.assert_same_structure(self.loss, teacher_outputs)
        except ValueError as e:
            raise ValueError(f"FeatureDistillation: the structure of `loss` does not match "
                             f"the outputs: {e}") from None

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        def apply(loss_fn, teacher, student):
            return 0.0 if loss_fn is None else torch.mean(loss_fn(teacher, student))
        return _sum(tree.map_structure(apply, self.loss, teacher_outputs, student_outputs))

    def get_config(self):
        from plexus.saving.serialization import serialize_keras_object
        return {"loss": serialize_keras_object(self.loss), "teacher_layer_name":
                self.teacher_layer_name, "student_layer_name": self.student_layer_name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["loss"] = _loss_from_config(config["loss"])
        return cls(**config)


class LogitsDistillation(DistillationLoss):
    """The student's logits are pulled towards the teacher's, both divided by
    `temperature`. With a `KLDivergence` loss object both are turned into probabilities
    (softmax) and the loss is multiplied by `temperature**2` (Hinton et al.); other losses
    (including the default, the function named `"kl_divergence"`, as in Keras) compare the
    scaled logits directly.

    Args:
        temperature: a positive number; higher gives softer targets.
        loss: a loss name, object or function, or a structure of them for structured
            outputs (None entries skipped).
    """

    def __init__(self, temperature=3.0, loss="kl_divergence"):
        self.temperature = temperature
        self.loss = tree.map_structure(_loss_function, loss)
        if _all_none(self.loss):
            raise ValueError("LogitsDistillation: `loss` must hold at least one loss that is "
                             "not None.")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ValueError(f"LogitsDistillation: temperature must be a number; received "
                             f"{temperature!r}.")
        if temperature <= 0:
            raise ValueError(f"LogitsDistillation: temperature must be positive; received "
                             f"{temperature}.")

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        t = self.temperature
        teacher = tree.map_structure(lambda x: x / t, teacher_outputs)
        student = tree.map_structure(lambda x: x / t, student_outputs)

        def apply(loss_fn, teacher_logits, student_logits):
            if loss_fn is None:
                return 0.0
            if isinstance(loss_fn, losses_lib.KLDivergence):
                probs_t = torch.softmax(teacher_logits, dim=-1)
                probs_s = torch.softmax(student_logits, dim=-1)
                return torch.mean(loss_fn(probs_t, probs_s)) * (t ** 2)
            return torch.mean(loss_fn(teacher_logits, student_logits))
        return _sum(tree.map_structure(apply, self.loss, teacher, student))

    def get_config(self):
        from plexus.saving.serialization import serialize_keras_object
        return {"temperature": self.temperature, "loss": serialize_keras_object(self.loss)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["loss"] = _loss_from_config(config["loss"])
        return cls(**config)


def _check_shapes(teacher_shape, student_shape, what):
    if len(teacher_shape) != len(student_shape) or any(
            a is not None and b is not None and a != b
            for a, b in zip(teacher_shape, student_shape)):
        raise ValueError(f"Distiller: the teacher's and the student's {what} shapes differ: "
                         f"teacher {tuple(teacher_shape)}, student {tuple(student_shape)}.")


class Distiller(Model):
    """Trains `student` to match `teacher` (frozen) through `distillation_losses`, and its
    labels through the loss given to `compile`:
    `total = student_loss_weight * student_loss + (1 - student_loss_weight) *
    sum(weight_i * distillation_loss_i)`. Calling the distiller calls the student.

    Args:
        teacher, student: models with the same input and output shapes and dtypes.
        distillation_losses: a `DistillationLoss` or a list of them.
        distillation_loss_weights: one weight per distillation loss (1.0 each by default).
        student_loss_weight: in [0, 1].
        name: the model's name.

    `fit` logs `loss` and the trackers `student_loss`, `distillation_loss` and
    `total_loss`.
    """

    def __init__(self, teacher, student, distillation_losses, distillation_loss_weights=None,
                 student_loss_weight=0.5, name="distiller", **kwargs):
        super().__init__(name=name, **kwargs)
        for role, model in (("teacher", teacher), ("student", student)):
            if not isinstance(model, Model):
                raise ValueError(f"Distiller: the {role} must be a plexus Model; received "
                                 f"{type(model).__name__}.")
        self._check_compatible(teacher, student)
        if isinstance(student_loss_weight, bool) or not isinstance(
                student_loss_weight, (int, float)) or not 0.0 <= student_loss_weight <= 1.0:
            raise ValueError(f"Distiller: student_loss_weight must be a number in [0, 1]; "
                             f"received {student_loss_weight!r}.")
        if distillation_losses is None:
            raise ValueError("Distiller: distillation_losses cannot be None; give a "
                             "LogitsDistillation, a FeatureDistillation or a list of them.")
        if not isinstance(distillation_losses, (list, tuple)):
            distillation_losses, distillation_loss_weights = [distillation_losses], [1.0]
        distillation_losses = list(distillation_losses)
        if distillation_loss_weights is None:
            distillation_loss_weights = [1.0] * len(distillation_losses)
        if len(distillation_loss_weights) != len(distillation_losses):
            raise ValueError(f"Distiller: {len(distillation_loss_weights)} "
                             f"distillation_loss_weights for {len(distillation_losses)} "
                             "distillation_losses; give one weight per loss.")
        self.teacher, self.student = teacher, student
        self.student_loss_weight = student_loss_weight
        self.distillation_losses = distillation_losses
        self.distillation_loss_weights = list(distillation_loss_weights)
        for loss in distillation_losses:
            loss.validate_model_compatibility(teacher, student)
        self._teacher_features = self._feature_extractor(
            teacher, [getattr(d, "teacher_layer_name", None) for d in distillation_losses])
        self._student_features = self._feature_extractor(
            student, [getattr(d, "student_layer_name", None) for d in distillation_losses])
        self.teacher.trainable = False
        from plexus.metrics import Mean
        self.student_loss_tracker = Mean(name="student_loss")
        self.distillation_loss_tracker = Mean(name="distillation_loss")
        self.total_loss_tracker = Mean(name="total_loss")

    @staticmethod
    def _check_compatible(teacher, student):
        def check(what, a, b):
            _check_shapes(a.shape, b.shape, what)
            if a.dtype != b.dtype:
                raise ValueError(f"Distiller: the teacher's and the student's {what} dtypes "
                                 f"differ: teacher {a.dtype}, student {b.dtype}.")
        for what in ("inputs", "outputs"):
            t, s = getattr(teacher, what, None), getattr(student, what, None)
            if t is not None and s is not None:
                tree.map_structure(lambda a, b, w=what[:-1]: check(w, a, b), t, s)

    @staticmethod
    def _feature_extractor(model, layer_names):
        names = list(dict.fromkeys(n for n in layer_names if n))
        if not names:
            return None
        if getattr(model, "inputs", None) is None:
            raise ValueError(f"Distiller: cannot read layer outputs of model {model.name!r}: "
                             "it has no symbolic inputs.")
        outputs = {"final_output": model.outputs[0] if len(model.outputs) == 1
                   else model.outputs}
        for name in names:
            outputs[name] = model.get_layer(name=name).output
        return Model(inputs=model.inputs, outputs=outputs,
                     name=f"{model.name}_multi_feature_extractor")

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """`loss` is the student's loss on the labels (required); `metrics` a list."""
        if loss is None:
            raise ValueError("Distiller.compile: `loss` (the student's loss on the labels) "
                             "cannot be None.")
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise ValueError(f"Distiller.compile: metrics must be a list or tuple; received "
                             f"{type(metrics).__name__}.")
        self._student_loss = tree.map_structure(_loss_function, loss)
        super().compile(optimizer=optimizer, loss=None, metrics=metrics, **kwargs)

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def _features(self, extractor, model, x, training, y_pred=None):
        if extractor is not None:
            return extractor(x, training=training)
        if y_pred is not None:
            return {"final_output": y_pred}
        return {"final_output": model(x, training=training)}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is None:
            y_pred = self(x, training=training)
        student_loss = torch.zeros(())
        if self.student_loss_weight > 0.0 and y is not None:
            values = tree.map_structure(lambda fn, target, pred: fn(target, pred),
                                        self._student_loss, y, y_pred)
            student_loss = torch.mean(_sum(values)) if len(tree.flatten(values)) > 1 else \
                torch.mean(tree.flatten(values)[0])
        distillation = torch.zeros(())
        if self.student_loss_weight < 1.0:
            with torch.no_grad():
                teacher = self._features(self._teacher_features, self.teacher, x, False)
            student = self._features(self._student_features, self.student, x, True, y_pred)
            for loss, weight in zip(self.distillation_losses, self.distillation_loss_weights):
                t_name = getattr(loss, "teacher_layer_name", None)
                if t_name is not None:
                    s_name = getattr(loss, "student_layer_name", None) or "final_output"
                    t_out, s_out = teacher[t_name], student[s_name]
                else:
                    t_out, s_out = teacher["final_output"], y_pred
                loss.validate_outputs(t_out, s_out)
                value = loss.compute_loss(t_out, s_out)
                if getattr(value, "ndim", 0):
                    raise ValueError(f"Distiller: {type(loss).__name__}.compute_loss returned "
                                     f"a loss of shape {tuple(value.shape)}, not a scalar.")
                distillation = distillation.to(value.device) + weight * value
        device = distillation.device if distillation.device.type != "cpu" else \
            student_loss.device
        student_loss, distillation = student_loss.to(device), distillation.to(device)
        total = self.student_loss_weight * student_loss + \
            (1.0 - self.student_loss_weight) * distillation
        self.student_loss_tracker.update_state(student_loss.detach())
        self.distillation_loss_tracker.update_state(distillation.detach())
        self.total_loss_tracker.update_state(total.detach())
        return total

    def get_config(self):
        from plexus.saving.serialization import serialize_keras_object
        return {"name": self.name, "teacher": serialize_keras_object(self.teacher),
                "student": serialize_keras_object(self.student),
                "distillation_losses": [serialize_keras_object(d)
                                        for d in self.distillation_losses],
                "distillation_loss_weights": self.distillation_loss_weights,
                "student_loss_weight": self.student_loss_weight}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from plexus.saving.serialization import deserialize_keras_object
        config = dict(config)
        for key in ("teacher", "student"):
            config[key] = deserialize_keras_object(config[key])
        from plexus.saving.serialization import custom_object_scope
        with custom_object_scope({"LogitsDistillation": LogitsDistillation,
                                  "FeatureDistillation": FeatureDistillation,
                                  **(custom_objects or {})}):
            config["distillation_losses"] = [deserialize_keras_object(d)
                                             for d in config["distillation_losses"]]
        return cls(**config)


from plexus.saving import registry as _registry  # noqa: E402

_registry.register_model_class("Distiller", Distiller)  # (files name it; load_model finds it)
