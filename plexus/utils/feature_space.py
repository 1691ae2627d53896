"""`FeatureSpace`: preprocessing and encoding of structured (tabular) data, as
`keras.utils.FeatureSpace`, built on plexus's preprocessing layers (Keras's needs TensorFlow;
this one runs on NumPy and torch).

    feature_space = FeatureSpace(
        features={"age": "float_normalized", "city": "string_categorical",
                  "zip": "integer_hashed"},
        crosses=[("city", "zip")], output_mode="concat")
    feature_space.adapt(train_features)            # a dict of columns, or batches of dicts
    x = feature_space(train_features)              # float32 (n, total_width)
    inputs = feature_space.get_inputs()            # symbolic, one Input per feature
    encoded = feature_space.get_encoded_features() # to build a model on
"""
import numpy as np
import torch

from plexus.backend import unique_name
from plexus.layers.layer import Layer


class Cross:
    """Features crossed by hashing their combined values into `crossing_dim` bins (see
    `FeatureSpace.cross`)."""

    def __init__(self, feature_names, crossing_dim, output_mode="one_hot"):
        if output_mode not in ("int", "one_hot"):
            raise ValueError(f"FeatureSpace.cross: output_mode must be 'int' or 'one_hot'; "
                             f"received {output_mode!r}.")
        self.feature_names = tuple(feature_names)
        self.crossing_dim, self.output_mode = crossing_dim, output_mode

    @property
    def name(self):
        return "_X_".join(self.feature_names)

    def get_config(self):
        return {"feature_names": self.feature_names, "crossing_dim": self.crossing_dim,
                "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Feature:
    """One feature: its input dtype, the layer that preprocesses it, and how its output is
    encoded (`"int"`, `"one_hot"` or `"float"`); see `FeatureSpace.feature`."""

    def __init__(self, dtype, preprocessor, output_mode):
        if output_mode not in ("int", "one_hot", "float"):
            raise ValueError(f"FeatureSpace.feature: output_mode must be 'int', 'one_hot' or "
                             f"'float'; received {output_mode!r}.")
        if isinstance(preprocessor, dict):
            from plexus.saving.serialization import deserialize_keras_object
            preprocessor = deserialize_keras_object(preprocessor)
        self.dtype, self.preprocessor, self.output_mode = dtype, preprocessor, output_mode

    def get_config(self):
        from plexus.saving.serialization import serialize_keras_object
        return {"dtype": self.dtype, "preprocessor": serialize_keras_object(self.preprocessor),
                "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class TFDIdentity(Layer):
    """The preprocessor of a plain float feature: the values as float32. (Named as Keras
    names its layer, so that saved files name the same class.)"""

    def call(self, inputs):
        x = torch.as_tensor(inputs) if not isinstance(inputs, torch.Tensor) else inputs
        return x.to(torch.float32)

    def compute_output_shape(self, input_shape):
        return input_shape


class TFDConcat(Layer):
    """Concatenates the encoded features along `axis` (Keras's name for it)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        return torch.cat([torch.as_tensor(x).to(torch.float32) for x in inputs], dim=self.axis)

    def compute_output_shape(self, input_shape):
        shapes = [list(s) for s in input_shape]
        out = shapes[0]
        sizes = [s[self.axis] for s in shapes]
        out[self.axis] = None if any(v is None for v in sizes) else sum(sizes)
        return tuple(out)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def _as_column(values, name):
    """A feature's values as a (n, 1) array or tensor (scalars become (1, 1))."""
    if isinstance(values, torch.Tensor):
        x = values
    else:
        x = np.asarray(values)
        if x.dtype.kind == "O":
            x = x.astype(str)
    if x.ndim == 0:
        return x.reshape(1, 1)
    if x.ndim == 1:
        return x.reshape(-1, 1)
    if x.ndim == 2 and x.shape[-1] == 1:
        return x
    raise ValueError(f"FeatureSpace: feature {name!r} must hold one value per sample (shape "
                     f"(n,) or (n, 1)); received shape {tuple(x.shape)}.")


def _rows(data, names):
    """A dict of columns from a dict, a DataFrame, or an iterable of dict batches (or
    `(dict, targets)` batches), each column concatenated."""
    if hasattr(data, "items") and not isinstance(data, dict):
        data = dict(data.items())  # e.g. a pandas DataFrame
    if isinstance(data, dict):
        batches = [data]
    elif hasattr(data, "__iter__") and not isinstance(data, (str, bytes, np.ndarray)):
        batches = []
        for batch in data:
            if isinstance(batch, tuple) and batch and isinstance(batch[0], dict):
                batch = batch[0]
            if not isinstance(batch, dict):
                raise ValueError(f"FeatureSpace.adapt(): each batch must be a dict of features "
                                 f"(or a (features, targets) tuple); received "
                                 f"{type(batch).__name__}.")
            batches.append(batch)
    else:
        raise ValueError(f"FeatureSpace.adapt() takes a dict of feature arrays, or an iterable "
                         f"of such dicts (batches); received {type(data).__name__}.")
    if not batches:
        raise ValueError("FeatureSpace.adapt() received no data.")
    columns = {}
    for name in names:
        parts = []
        for batch in batches:
            if name not in batch:
                raise ValueError(f"FeatureSpace.adapt(): the data has no feature {name!r}; it "
                                 f"holds {sorted(batch)}.")
            column = batch[name]
            if isinstance(column, torch.Tensor):
                column = column.detach().cpu().numpy()
            parts.append(_as_column(column, name))
        columns[name] = np.concatenate(parts, axis=0)
    return columns


def _learned(layer):
    """Whether a preprocessing layer holds what `adapt` learns."""
    from plexus.layers import Discretization, IntegerLookup, Normalization, StringLookup
    if isinstance(layer, Normalization):
        return layer.built  # its statistics exist once adapted (or loaded from a file)
    if isinstance(layer, (StringLookup, IntegerLookup)):
        return layer.vocabulary_size() > layer._token_start_index()
    if isinstance(layer, Discretization):
        return layer.bin_boundaries is not None
    return False


class FeatureSpace(Layer):
    """Preprocesses and encodes structured data: one preprocessing layer per feature, hashed
    crosses of features, one-hot encoding of categorical outputs, and (with
    `output_mode="concat"`) one float32 vector per sample.

    Args:
        features: feature name -> a type name (`"float"`, `"float_rescaled"`,
            `"float_normalized"`, `"float_discretized"`, `"integer_categorical"`,
            `"string_categorical"`, `"integer_hashed"`, `"string_hashed"`) or a feature made by
            the class methods of the same names (`FeatureSpace.string_categorical(...)`) or
            `FeatureSpace.feature(dtype, preprocessor, output_mode)`.
        output_mode: `"concat"` (one vector; features in sorted name order, then crosses) or
            `"dict"` (a dict of encoded features).
        crosses: tuples of feature names to cross (or `FeatureSpace.cross(...)`).
        crossing_dim: the number of hash bins of crosses given as tuples.
        hashing_dim: the number of bins of `"integer_hashed"` / `"string_hashed"`.
        num_discretization_bins: the bins of `"float_discretized"`.

    Call `adapt(data)` first (features whose layers learn from data: normalization,
    lookups, discretization), then call the feature space on a dict of columns (arrays or
    lists, one value per sample) to get encoded features, or use `get_inputs()` and
    `get_encoded_features()` to build a model. Outputs are torch tensors.
    """

    _saved_as_model = True  # `save()` writes a .keras file that `load_model` reads back

    @classmethod
    def cross(cls, feature_names, crossing_dim, output_mode="one_hot"):
        return Cross(feature_names, crossing_dim, output_mode=output_mode)

    @classmethod
    def feature(cls, dtype, preprocessor, output_mode):
        return Feature(dtype, preprocessor, output_mode)

    @classmethod
    def float(cls, name=None):
        name = name or unique_name("float")
        return Feature("float32", TFDIdentity(name=f"{name}_preprocessor"), "float")

    @classmethod
    def float_rescaled(cls, scale=1.0, offset=0.0, name=None):
        from plexus.layers import Rescaling
        name = name or unique_name("float_rescaled")
        return Feature("float32", Rescaling(scale=scale, offset=offset,
                                            name=f"{name}_preprocessor"), "float")

    @classmethod
    def float_normalized(cls, name=None):
        from plexus.layers import Normalization
        name = name or unique_name("float_normalized")
        return Feature("float32", Normalization(axis=-1, name=f"{name}_preprocessor"), "float")

    @classmethod
    def float_discretized(cls, num_bins, bin_boundaries=None, output_mode="one_hot",
                          name=None):
        from plexus.layers import Discretization
        name = name or unique_name("float_discretized")
        if bin_boundaries is not None:
            num_bins = None  # the boundaries fix the bins
        return Feature("float32", Discretization(num_bins=num_bins,
                                                 bin_boundaries=bin_boundaries,
                                                 name=f"{name}_preprocessor"), output_mode)

    @classmethod
    def integer_categorical(cls, max_tokens=None, num_oov_indices=1, output_mode="one_hot",
                            name=None):
        from plexus.layers import IntegerLookup
        name = name or unique_name("integer_categorical")
        return Feature("int32", IntegerLookup(name=f"{name}_preprocessor",
                                              max_tokens=max_tokens,
                                              num_oov_indices=num_oov_indices), output_mode)

    @classmethod
    def string_categorical(cls, max_tokens=None, num_oov_indices=1, output_mode="one_hot",
                           name=None):
        from plexus.layers import StringLookup
        name = name or unique_name("string_categorical")
        return Feature("string", StringLookup(name=f"{name}_preprocessor",
                                              max_tokens=max_tokens,
                                              num_oov_indices=num_oov_indices), output_mode)

    @classmethod
    def string_hashed(cls, num_bins, output_mode="one_hot", name=None):
        from plexus.layers import Hashing
        name = name or unique_name("string_hashed")
        return Feature("string", Hashing(name=f"{name}_preprocessor", num_bins=num_bins),
                       output_mode)

    @classmethod
    def integer_hashed(cls, num_bins, output_mode="one_hot", name=None):
        from plexus.layers import Hashing
        name = name or unique_name("integer_hashed")
        return Feature("int32", Hashing(name=f"{name}_preprocessor", num_bins=num_bins),
                       output_mode)

    def __init__(self, features, output_mode="concat", crosses=None, crossing_dim=32,
                 hashing_dim=32, num_discretization_bins=32, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if not features or not isinstance(features, dict):
            raise ValueError("FeatureSpace: features must be a non-empty dict of feature name "
                             "-> type; received "
                             f"{features!r}.")
        if output_mode not in ("dict", "concat"):
            raise ValueError(f"FeatureSpace: output_mode must be 'dict' or 'concat'; received "
                             f"{output_mode!r}.")
        self.crossing_dim, self.hashing_dim = crossing_dim, hashing_dim
        self.num_discretization_bins = num_discretization_bins
        self.output_mode = output_mode
        self.features = {n: self._standardize_feature(n, v) for n, v in features.items()}
        self.crosses = []
        for cross in crosses or ():
            if isinstance(cross, dict):
                cross = Cross.from_config(cross.get("config", cross))
            if not isinstance(cross, Cross):
                if not crossing_dim:
                    raise ValueError("FeatureSpace: crosses given as names need crossing_dim "
                                     "(the number of hash bins).")
                cross = Cross(cross, crossing_dim=crossing_dim)
            unknown = [n for n in cross.feature_names if n not in self.features]
            if unknown:
                raise ValueError(f"FeatureSpace: the cross {cross.feature_names} names "
                                 f"features {unknown} that are not in `features` "
                                 f"({sorted(self.features)}).")
            self.crosses.append(cross)
        self.crosses_by_name = {c.name: c for c in self.crosses}
        self.preprocessors = {n: f.preprocessor for n, f in self.features.items()}
        from plexus.layers import HashedCrossing
        self.crossers = {c.name: HashedCrossing(c.crossing_dim, name=c.name)
                         for c in self.crosses}
        self.one_hot_encoders = {}
        self._is_adapted = False
        self._inputs = None
        self.encoded_features = None

    def _standardize_feature(self, name, feature):
        if isinstance(feature, Feature):
            return feature
        if isinstance(feature, dict):
            return Feature.from_config(feature.get("config", feature))
        makers = {
            "float": lambda: self.float(name=name),
            "float_normalized": lambda: self.float_normalized(name=name),
            "float_rescaled": lambda: self.float_rescaled(name=name),
            "float_discretized": lambda: self.float_discretized(
                num_bins=self.num_discretization_bins, name=name),
            "integer_categorical": lambda: self.integer_categorical(name=name),
            "string_categorical": lambda: self.string_categorical(name=name),
            "integer_hashed": lambda: self.integer_hashed(self.hashing_dim, name=name),
            "string_hashed": lambda: self.string_hashed(self.hashing_dim, name=name),
        }
        if feature not in makers:
            raise ValueError(f"FeatureSpace: invalid type {feature!r} for feature {name!r}; "
                             f"expected one of {sorted(makers)} or a FeatureSpace.feature().")
        return makers[feature]()

    # ------------------------------------------------------------------ adapting
    def _adaptable(self):
        from plexus.layers import Normalization, StringLookup, IntegerLookup, Discretization
        names = []
        for name, layer in self.preprocessors.items():
            if isinstance(layer, Normalization) and layer.input_mean is not None:
                continue
            if isinstance(layer, (StringLookup, IntegerLookup)) and \
                    layer._has_input_vocabulary:
                continue
            if isinstance(layer, Discretization) and layer.num_bins is None:
                continue
            if hasattr(layer, "adapt"):
                names.append(name)
        return names

    def adapt(self, dataset):
        """Fit the preprocessing layers that learn from data on `dataset`: a dict of feature
        columns (arrays or lists), a DataFrame, or an iterable of such dicts (batches, or
        `(features, targets)` batches)."""
        names = self._adaptable()
        columns = _rows(dataset, names) if names else {}
        for name in names:
            self.preprocessors[name].adapt(columns[name])
        self._is_adapted = True
        self.one_hot_encoders = {}  # sized by the vocabularies just learned
        self.encoded_features = None
        self._inputs = None
        self.built = True

    def _check_adapted(self):
        if not self._is_adapted:
            waiting = [n for n in self._adaptable() if not _learned(self.preprocessors[n])]
            if waiting:
                raise ValueError("FeatureSpace: call adapt(data) before using it (some of its "
                                 f"features learn from data: {waiting}).")
            self._is_adapted = True  # (loaded from a file, or its layers adapted one by one)

    # ------------------------------------------------------------------ encoding
    def _cardinality(self, name, spec):
        from plexus.layers import (CategoryEncoding, Discretization, HashedCrossing, Hashing,
                                   IntegerLookup, StringLookup)
        layer = self.preprocessors.get(name) or self.crossers.get(name)
        if isinstance(layer, (IntegerLookup, StringLookup)):
            return layer.vocabulary_size()
        if isinstance(layer, CategoryEncoding):
            return layer.num_tokens
        if isinstance(layer, Discretization):
            return len(layer.bin_boundaries) + 1 if layer.bin_boundaries is not None \
                else layer.num_bins
        if isinstance(layer, (Hashing, HashedCrossing)):
            return layer.num_bins
        raise ValueError(f"FeatureSpace: feature {name!r} has output_mode='one_hot' but the "
                         f"size of its layer's output space is unknown "
                         f"({type(layer).__name__}); use output_mode='int'.")

    def _encoder(self, name, spec):
        if spec.output_mode != "one_hot":
            return None
        if name not in self.one_hot_encoders:
            from plexus.layers import CategoryEncoding
            self.one_hot_encoders[name] = CategoryEncoding(
                num_tokens=self._cardinality(name, spec), output_mode="multi_hot",
                name=f"{name}_one_hot")
        return self.one_hot_encoders[name]

    def _encode(self, columns, concat):
        """Preprocess, cross, one-hot encode and merge the (n, 1) `columns` (arrays or
        symbolic inputs)."""
        pre = {name: self.preprocessors[name](columns[name]) for name in self.features}
        crossed = {c.name: self.crossers[c.name]([pre[n] for n in c.feature_names])
                   for c in self.crosses}
        out = {}
        for name in sorted(pre):
            out[name] = pre[name], self.features[name]
        for name in sorted(crossed):
            out[name] = crossed[name], self.crosses_by_name[name]
        encoded = {}
        for name, (value, spec) in out.items():
            encoder = self._encoder(name, spec)
            encoded[name] = encoder(value) if encoder is not None else value
        if self.output_mode == "dict":
            return encoded
        for name, value in encoded.items():
            dtype = str(value.dtype).replace("torch.", "")
            if not dtype.startswith(("float", "bfloat")):
                raise ValueError(f"FeatureSpace: cannot concatenate feature {name!r}: it is "
                                 f"not encoded as floats (dtype {dtype}). Use one_hot or "
                                 "float encodings, or output_mode='dict'.")
        return concat(list(encoded.values()))

    def get_inputs(self):
        """The symbolic inputs, one `Input(shape=(1,))` per feature, by name."""
        self._check_adapted()
        if self._inputs is None:
            from plexus.layers.input_layer import Input
            self._inputs = {name: Input(shape=(1,), dtype=f.dtype, name=name)
                            for name, f in self.features.items()}
        return self._inputs

    def get_encoded_features(self):
        """The encoded features of `get_inputs()`: a symbolic tensor (concat) or a dict."""
        self._check_adapted()
        if self.encoded_features is None:
            self.encoded_features = self._encode(self.get_inputs(),
                                                 TFDConcat(axis=-1, name=unique_name("concat")))
        return self.encoded_features

    def __call__(self, data):
        if not isinstance(data, dict):
            raise ValueError(f"FeatureSpace {self.name!r} takes a dict of features; received "
                             f"{type(data).__name__}.")
        self._check_adapted()
        missing = [n for n in self.features if n not in data]
        if missing:
            raise ValueError(f"FeatureSpace {self.name!r}: the data lacks features {missing} "
                             f"(it holds {sorted(data)}).")
        single = all(np.ndim(data[n]) == 0 for n in self.features)
        columns = {n: _as_column(data[n], n) for n in self.features}
        merged = self._encode(columns, TFDConcat(axis=-1).call)
        if single:
            if self.output_mode == "concat":
                return merged[0]
            return {k: v[0] if v.ndim == 2 and v.shape[0] == 1 else v for k, v in merged.items()}
        return merged

    # ------------------------------------------------------------------ saving
    def get_config(self):
        from plexus.saving.serialization import serialize_keras_object
        # Features and crosses are written as their plain configs (a loader then only has to
        # create the preprocessing layers inside them).
        return {"name": self.name,
                "features": {n: f.get_config() for n, f in self.features.items()},
                "output_mode": self.output_mode,
                "crosses": [serialize_keras_object(c.get_config()) for c in self.crosses],
                "crossing_dim": self.crossing_dim, "hashing_dim": self.hashing_dim,
                "num_discretization_bins": self.num_discretization_bins}

    @classmethod
    def from_config(cls, config):
        space = cls(**config)
        # Each feature is one column: build the layers now (as Keras's build config does), so
        # that a loaded file's statistics have weights to go into.
        for layer in space.preprocessors.values():
            if not layer.built:
                layer.build((None, 1))
        return space

    def _keras_children(self):
        """The layers whose weights and assets a saved file holds: the preprocessing layers,
        under `preprocessors/<class name>` as Keras's saver names a dict's entries."""
        from plexus.saving.weights import _container_name
        used = {}
        return [(f"preprocessors/{_container_name(layer, used)}", layer)
                for layer in self.preprocessors.values()]

    def save(self, filepath):
        """Save the feature space, with what it learned in `adapt`, to a `.keras` file;
        `plexus.models.load_model(filepath)` returns it, adapted."""
        from plexus.saving import save_model
        save_model(self, filepath)
