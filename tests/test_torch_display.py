"""`print(model)` shows the module tree as torch prints modules; `summary()` stays Keras's."""
import torch

import plexus as keras
from plexus import layers


class Scaled(keras.Model):
    def __init__(self):
        super().__init__(name="scaled")
        self.body = layers.Dense(3, activation="relu", name="body")

    def call(self, x):
        return self.body(x) * 2


def test_print_model_shows_the_module_tree():
    a, b = keras.Input((7, 3), name="seq"), keras.Input((4,), name="extra")
    h = layers.Bidirectional(layers.LSTM(4, name="lstm"), name="bi")(a)
    h = layers.concatenate([h, layers.Dense(5, name="d")(b)], name="cat")
    torch_head = layers.TorchModuleWrapper(torch.nn.Sequential(torch.nn.Linear(13, 2)),
                                           name="head")
    model = keras.Model([a, b], torch_head(layers.Dropout(0.5, name="drop")(h)), name="net")
    text = repr(model)
    assert str(model) == text
    lines = text.splitlines()
    assert lines[0] == ("Functional(name='net', inputs=[(None, 7, 3), (None, 4)], "
                        "outputs=(None, 2)")
    assert "  (bi): Bidirectional(name='bi', merge_mode='concat'" in lines
    assert "    (forward_layer): LSTM(name='forward_lstm', units=4, activation='tanh'" in lines
    assert "  (d): Dense(name='d', units=5, activation='linear')" in lines
    assert "  (drop): Dropout(name='drop', rate=0.5)" in lines
    assert "      (0): Linear(in_features=13, out_features=2, bias=True)" in lines  # torch's own
    assert lines[-1] == ")"
    # Every submodule torch knows about appears, in registration order.
    assert [n for n, _ in model.named_children()] == ["bi", "d", "cat", "drop", "head"]
    assert text.index("(bi)") < text.index("(d)") < text.index("(cat)") < text.index("(head)")
    summary = []
    model.summary(print_fn=summary.append)
    assert "Total params" in "\n".join(summary) and "(Bidirectional)" in "\n".join(summary)


def test_print_subclassed_and_frozen():
    model = Scaled()
    model(torch.ones(2, 4))
    model.body.trainable = False
    assert repr(model) == ("Scaled(name='scaled'\n"
                           "  (body): Dense(name='body', units=3, activation='relu', "
                           "trainable=False)\n)")
