"""The benchmark workloads: the seed tutorials' models, their data, and hand-written PyTorch twins.

Every workload builds its model with one function, `build(K)`, where `K` is a module with the
Keras API: `plexus` or `keras` (either backend). The same code builds all three, which is the
point of plexus. `torch_twin()` writes the same network as a plain `torch.nn.Module` with the
loss a PyTorch user would write for it; `torch_step` trains it. Sizes follow the issue's table.
"""
import numpy as np

WORKLOADS = {}


def workload(name, samples, batch_size, epochs_hint=1):
    def deco(cls):
        cls.name, cls.samples, cls.batch_size = name, samples, batch_size
        WORKLOADS[name] = cls
        return cls
    return deco


# ---------------------------------------------------------------------- MLP
@workload("mlp", samples=1000, batch_size=128)
class MLP:
    """64 -> 32 -> 32 -> 10, softmax, RMSprop, categorical cross-entropy (seed 000, 7.1.1)."""

    repeat = 5  # epochs of milliseconds: each round times five back to back, keeps the best

    @staticmethod
    def data(n, rng):
        x = rng.random((n, 64)).astype("float32")
        y = rng.random((n, 10)).astype("float32")
        return [x], [y]

    @staticmethod
    def build(K):
        L = K.layers
        inp = K.Input(shape=(64,))
        x = L.Dense(32, activation="relu")(inp)
        x = L.Dense(32, activation="relu")(x)
        out = L.Dense(10, activation="softmax")(x)
        model = K.Model(inp, out)
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
        return model

    @staticmethod
    def torch_twin():
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.l1, self.l2, self.l3 = nn.Linear(64, 32), nn.Linear(32, 32), nn.Linear(32, 10)

            def forward(self, x):
                return self.l3(torch.relu(self.l2(torch.relu(self.l1(x)))))

        def loss(outs, ys):  # soft targets: cross-entropy on the logits
            return torch.nn.functional.cross_entropy(outs, ys[0])

        return Net(), loss, lambda out: torch.softmax(out, -1)


# ---------------------------------------------------------------------- question answering
@workload("qa_lstm", samples=1000, batch_size=128)
class QALSTM:
    """Two inputs (text, question), Embedding + LSTM each, concatenated, Dense(500) softmax
    (seed 000, 7.1.2); RMSprop, categorical cross-entropy, accuracy."""

    @staticmethod
    def data(n, rng):
        text = rng.integers(1, 10000, size=(n, 100)).astype("int32")
        question = rng.integers(1, 10000, size=(n, 100)).astype("int32")
        answers = np.eye(500, dtype="float32")[rng.integers(0, 500, size=n)]
        return [text, question], [answers]

    @staticmethod
    def build(K):
        L = K.layers
        text_input = K.Input(shape=(None,), dtype="int32", name="text")
        encoded_text = L.LSTM(32)(L.Embedding(10000, 64)(text_input))
        question_input = K.Input(shape=(None,), dtype="int32", name="question")
        encoded_question = L.LSTM(16)(L.Embedding(10000, 32)(question_input))
        concatenated = L.concatenate([encoded_text, encoded_question], axis=-1)
        answer = L.Dense(500, activation="softmax")(concatenated)
        model = K.Model([text_input, question_input], answer)
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["acc"])
        return model

    @staticmethod
    def torch_twin():
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.et, self.eq = nn.Embedding(10000, 64), nn.Embedding(10000, 32)
                self.lt = nn.LSTM(64, 32, batch_first=True)
                self.lq = nn.LSTM(32, 16, batch_first=True)
                self.out = nn.Linear(48, 500)

            def forward(self, text, question):
                _, (ht, _) = self.lt(self.et(text))
                _, (hq, _) = self.lq(self.eq(question))
                return self.out(torch.cat([ht[0], hq[0]], dim=-1))

        def loss(outs, ys):
            return torch.nn.functional.cross_entropy(outs, ys[0])

        return Net(), loss, lambda out: torch.softmax(out, -1)


# ---------------------------------------------------------------------- posts, three outputs
@workload("posts_conv1d", samples=256, batch_size=64)
class Posts:
    """Embedding(50000, 256), five Conv1D, three outputs (age, income, gender) with per-output
    losses and loss weights (seed 000, 7.1.3); sequences of 500 words."""

    vocabulary = 50000  # the tests shrink it
    max_rounds = 3  # seconds per epoch: three rounds keep the whole run to minutes

    @classmethod
    def data(cls, n, rng):
        posts = rng.integers(1, cls.vocabulary, size=(n, 500)).astype("int32")
        age = rng.random((n, 1)).astype("float32") * 50
        income = np.eye(10, dtype="float32")[rng.integers(0, 10, size=n)]
        gender = rng.integers(0, 2, size=(n, 1)).astype("float32")
        return [posts], [age, income, gender]

    @classmethod
    def build(cls, K):
        L = K.layers
        posts_input = K.Input(shape=(None,), dtype="int32", name="posts")
        x = L.Embedding(cls.vocabulary, 256)(posts_input)
        x = L.Conv1D(128, 5, activation="relu")(x)
        x = L.MaxPooling1D(5)(x)
        x = L.Conv1D(256, 5, activation="relu")(x)
        x = L.Conv1D(256, 5, activation="relu")(x)
        x = L.MaxPooling1D(5)(x)
        x = L.Conv1D(256, 5, activation="relu")(x)
        x = L.Conv1D(256, 5, activation="relu")(x)
        x = L.GlobalMaxPooling1D()(x)
        x = L.Dense(128, activation="relu")(x)
        age = L.Dense(1, name="age")(x)
        income = L.Dense(10, activation="softmax", name="income")(x)
        gender = L.Dense(1, activation="sigmoid", name="gender")(x)
        model = K.Model(posts_input, [age, income, gender])
        model.compile(optimizer="rmsprop",
                      loss=["mse", "categorical_crossentropy", "binary_crossentropy"],
                      loss_weights=[0.25, 1.0, 10.0])
        return model

    @classmethod
    def torch_twin(cls):
        import torch  # noqa: F401
        from torch import nn
        F = nn.functional
        vocabulary = cls.vocabulary

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(vocabulary, 256)
                self.convs = nn.ModuleList([nn.Conv1d(a, b, 5) for a, b in
                                            ((256, 128), (128, 256), (256, 256), (256, 256),
                                             (256, 256))])
                self.hidden = nn.Linear(256, 128)
                self.age, self.income, self.gender = (nn.Linear(128, 1), nn.Linear(128, 10),
                                                      nn.Linear(128, 1))

            def forward(self, posts):
                x = self.emb(posts).transpose(1, 2)  # (batch, channels, time)
                c = self.convs
                x = F.max_pool1d(F.relu(c[0](x)), 5)
                x = F.max_pool1d(F.relu(c[2](F.relu(c[1](x)))), 5)
                x = F.relu(c[4](F.relu(c[3](x))))
                x = F.relu(self.hidden(x.amax(dim=2)))
                return self.age(x), self.income(x), self.gender(x)

        def loss(outs, ys):
            age, income, gender = outs
            return (0.25 * F.mse_loss(age, ys[0]) + F.cross_entropy(income, ys[1])
                    + 10.0 * F.binary_cross_entropy_with_logits(gender, ys[2]))

        return Net(), loss, lambda outs: outs


# ---------------------------------------------------------------------- ticket routing
@workload("ticket_lstm", samples=1280, batch_size=32)
class Ticket:
    """Title and body (Embedding + LSTM) and tags, two outputs (priority, department) with
    per-output losses, loss weights and accuracies (examples/quickstart.py)."""

    @staticmethod
    def data(n, rng):
        title = rng.integers(1, 10000, size=(n, 10)).astype("int32")
        body = rng.integers(1, 10000, size=(n, 100)).astype("int32")
        tags = rng.integers(0, 2, size=(n, 12)).astype("float32")
        priority = rng.integers(0, 2, size=(n, 1)).astype("float32")
        department = np.eye(4, dtype="float32")[rng.integers(0, 4, size=n)]
        return [title, body, tags], [priority, department]

    @staticmethod
    def build(K):
        L = K.layers
        title_input = K.Input(shape=(None,), dtype="int32", name="title")
        body_input = K.Input(shape=(None,), dtype="int32", name="body")
        tags_input = K.Input(shape=(12,), name="tags")
        title = L.LSTM(128)(L.Embedding(10000, 64)(title_input))
        body = L.LSTM(32)(L.Embedding(10000, 64)(body_input))
        x = L.concatenate([title, body, tags_input])
        priority = L.Dense(1, activation="sigmoid", name="priority")(x)
        department = L.Dense(4, activation="softmax", name="department")(x)
        model = K.Model([title_input, body_input, tags_input], [priority, department])
        model.compile(optimizer=K.optimizers.RMSprop(1e-3),
                      loss=["binary_crossentropy", "categorical_crossentropy"],
                      loss_weights=[1.0, 0.2], metrics=[["accuracy"], ["accuracy"]])
        return model

    @staticmethod
    def torch_twin():
        import torch
        from torch import nn
        F = nn.functional

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.et, self.eb = nn.Embedding(10000, 64), nn.Embedding(10000, 64)
                self.lt = nn.LSTM(64, 128, batch_first=True)
                self.lb = nn.LSTM(64, 32, batch_first=True)
                self.priority, self.department = nn.Linear(172, 1), nn.Linear(172, 4)

            def forward(self, title, body, tags):
                _, (ht, _) = self.lt(self.et(title))
                _, (hb, _) = self.lb(self.eb(body))
                x = torch.cat([ht[0], hb[0], tags], dim=-1)
                return self.priority(x), self.department(x)

        def loss(outs, ys):
            return (F.binary_cross_entropy_with_logits(outs[0], ys[0])
                    + 0.2 * F.cross_entropy(outs[1], ys[1]))

        return Net(), loss, lambda outs: outs


# ---------------------------------------------------------------------- residual CNN
@workload("residual_cnn", samples=512, batch_size=64)
class ResidualCNN:
    """A small residual CNN on 32x32x3 images: the seed's two residual blocks (identity and 1x1
    strided projection, seed 000 7.1.4) between a stem and a classifier."""

    max_rounds = 3

    @staticmethod
    def data(n, rng):
        x = rng.random((n, 32, 32, 3)).astype("float32")
        y = np.eye(10, dtype="float32")[rng.integers(0, 10, size=n)]
        return [x], [y]

    @staticmethod
    def build(K):
        L = K.layers
        inp = K.Input(shape=(32, 32, 3))
        x = L.Conv2D(32, 3, activation="relu", padding="same")(inp)
        y = L.Conv2D(32, 3, activation="relu", padding="same")(x)
        y = L.Conv2D(32, 3, activation="relu", padding="same")(y)
        x = L.add([y, x])
        y = L.Conv2D(64, 3, activation="relu", padding="same")(x)
        y = L.Conv2D(64, 3, activation="relu", padding="same")(y)
        y = L.MaxPooling2D(2, strides=2)(y)
        residual = L.Conv2D(64, 1, strides=2, padding="same")(x)
        x = L.add([y, residual])
        x = L.GlobalAveragePooling2D()(x)
        out = L.Dense(10, activation="softmax")(x)
        model = K.Model(inp, out)
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
        return model

    @staticmethod
    def torch_twin():
        import torch
        from torch import nn
        F = nn.functional

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1 = nn.Conv2d(3, 32, 3, padding=1)
                self.c2 = nn.Conv2d(32, 32, 3, padding=1)
                self.c3 = nn.Conv2d(32, 32, 3, padding=1)
                self.c4 = nn.Conv2d(32, 64, 3, padding=1)
                self.c5 = nn.Conv2d(64, 64, 3, padding=1)
                self.proj = nn.Conv2d(32, 64, 1, stride=2)
                self.out = nn.Linear(64, 10)

            def forward(self, x):  # x: (batch, 32, 32, 3) as stored; convolve channels-last
                x = x.permute(0, 3, 1, 2)
                x = F.relu(self.c1(x))
                x = F.relu(self.c3(F.relu(self.c2(x)))) + x
                y = F.max_pool2d(F.relu(self.c5(F.relu(self.c4(x)))), 2)
                x = y + self.proj(x)
                return self.out(x.mean(dim=(2, 3)))

        def loss(outs, ys):
            return F.cross_entropy(outs, ys[0])

        return Net(), loss, lambda out: torch.softmax(out, -1)


# ---------------------------------------------------------------------- ops between layers
@workload("ops_mlp", samples=2048, batch_size=128)
class OpsMLP:
    """A dozen `keras.ops` calls between two Dense layers (a hand-rolled group norm, a leaky
    gate with `where`, a reshape round trip, a concatenation): the cost of ops recorded in a
    functional graph against the same torch calls in a hand-written module."""

    @staticmethod
    def data(n, rng):
        x = rng.normal(size=(n, 32)).astype("float32")
        y = np.eye(10, dtype="float32")[rng.integers(0, 10, size=n)]
        return [x], [y]

    @staticmethod
    def build(K):
        L, o = K.layers, K.ops
        inp = K.Input(shape=(32,))
        h = o.relu(L.Dense(64)(inp))
        g = o.reshape(h, (-1, 4, 16))
        g = g - o.mean(g, axis=-1, keepdims=True)
        g = g * o.rsqrt(o.mean(o.square(g), axis=-1, keepdims=True) + 1e-5)
        g = o.where(g > 0, g, 0.1 * g)
        h = o.reshape(g, (-1, 64))
        h = o.concatenate([h, o.tanh(h)], axis=-1)
        out = L.Dense(10, activation="softmax")(h)
        model = K.Model(inp, out)
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
        return model

    @staticmethod
    def torch_twin():
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.l1, self.l2 = nn.Linear(32, 64), nn.Linear(128, 10)

            def forward(self, x):
                h = torch.relu(self.l1(x))
                g = h.reshape(-1, 4, 16)
                g = g - g.mean(-1, keepdim=True)
                g = g * torch.rsqrt(torch.square(g).mean(-1, keepdim=True) + 1e-5)
                g = torch.where(g > 0, g, 0.1 * g)
                h = g.reshape(-1, 64)
                return self.l2(torch.cat([h, torch.tanh(h)], -1))

        def loss(outs, ys):
            return nn.functional.cross_entropy(outs, ys[0])

        return Net(), loss, lambda out: torch.softmax(out, -1)


# ---------------------------------------------------------------------- applications
class _Application:
    """An ImageNet application trained from scratch on small images: `keras.applications`'
    constructor (weights=None, a 10-class top) in plexus and Keras; a hand-written PyTorch twin
    of the same architecture (bench/app_twins.py)."""

    image_size = 64
    classes = 10
    predict_batches = (1, 16)
    max_rounds = 3
    constructor = twin_class = None

    @classmethod
    def data(cls, n, rng):
        x = rng.uniform(0, 255, (n, cls.image_size, cls.image_size, 3)).astype("float32")
        y = np.eye(cls.classes, dtype="float32")[rng.integers(0, cls.classes, size=n)]
        return [x], [y]

    @classmethod
    def build(cls, K):
        model = getattr(K.applications, cls.constructor)(
            weights=None, input_shape=(cls.image_size, cls.image_size, 3), classes=cls.classes)
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
        return model

    @classmethod
    def torch_twin(cls):
        from bench import app_twins
        return app_twins.twin(getattr(app_twins, cls.twin_class), cls.classes)


@workload("efficientnet_b0", samples=64, batch_size=16)
class EfficientNetB0App(_Application):
    """EfficientNetB0 on 64x64 images: depthwise convolutions, squeeze-and-excite, swish,
    drop-connect."""

    constructor = twin_class = "EfficientNetB0"


@workload("convnext_tiny", samples=32, batch_size=16)
class ConvNeXtTinyApp(_Application):
    """ConvNeXtTiny on 64x64 images: 7x7 depthwise convolutions, LayerNormalization and Dense
    layers on 4-D activations, GELU, layer scale (28M weights)."""

    constructor = twin_class = "ConvNeXtTiny"
