"""Training mode: Keras's semantics for Keras's entry points (`model(x)` and `predict` infer
unless `training=True`, `fit` trains) and torch's for torch's tools (`.train()`, a plexus model
under a torch module such as a `LightningModule` trains Dropout and BatchNorm)."""
import warnings

import numpy as np
import pytest
import torch

import plexus as keras
from plexus import layers


def build():
    inp = keras.Input((8,))
    x = layers.BatchNormalization(name="bn")(inp)
    x = layers.Dropout(0.5, name="drop")(x)
    model = keras.Model(inp, layers.Dense(1, name="out")(x))
    return model


def data(n=32):
    rng = np.random.default_rng(0)
    x = (rng.random((n, 8)) * 4 + 3).astype("float32")  # mean far from BN's initial 0
    return x, rng.random((n, 1)).astype("float32")


class ModeProbe:
    """Records, for every call of the Dropout layer, whether it dropped units."""

    def __init__(self, model):
        self.dropped = []
        model.get_layer("drop").register_forward_hook(self._hook)

    def _hook(self, module, args, out):
        self.dropped.append(bool((out == 0).any()) and not bool((args[0] == 0).any()))


def moving_mean(model):
    return model.get_layer("bn").moving_mean.detach().clone()


def test_a_fresh_model_infers_and_fit_trains():
    model = build()
    probe = ModeProbe(model)
    x, y = data()
    assert model.training is False
    before = moving_mean(model)
    model(torch.as_tensor(x))
    model.predict(x, verbose=0)
    assert probe.dropped == [False, False]
    assert torch.equal(moving_mean(model), before)
    model(torch.as_tensor(x), training=True)
    assert probe.dropped[-1] is True and not torch.equal(moving_mean(model), before)
    model.compile(optimizer="sgd", loss="mse")
    probe.dropped.clear()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert probe.dropped and all(probe.dropped)
    assert model.training is False  # fit restores the mode it found
    probe.dropped.clear()
    model(torch.as_tensor(x))
    assert probe.dropped == [False]


def test_train_and_eval_set_the_mode_as_on_any_module():
    model = build()
    probe = ModeProbe(model)
    x = torch.as_tensor(data()[0])
    assert model.train() is model and model.training
    assert all(m.training for m in model.modules())
    before = moving_mean(model)
    model(x)
    assert probe.dropped == [True] and not torch.equal(moving_mean(model), before)
    model(x, training=False)  # an explicit argument wins over the mode
    assert probe.dropped[-1] is False
    model.eval()
    before = moving_mean(model)
    model(x)
    assert probe.dropped[-1] is False and torch.equal(moving_mean(model), before)
    # predict infers in either mode and gives the mode back.
    model.train()
    model.predict(data()[0], verbose=0)
    assert probe.dropped[-1] is False and model.training


def test_a_model_under_a_torch_module_takes_its_mode():
    model = build()
    probe = ModeProbe(model)
    parent = torch.nn.Sequential(model, torch.nn.Linear(1, 1))
    assert model.training and all(m.training for m in model.modules())
    x = torch.as_tensor(data()[0])
    parent(x)
    assert probe.dropped == [True]
    parent.eval()
    parent(x)
    assert probe.dropped[-1] is False and not model.training

    class Holder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.eval()
            self.body = build()  # registered under a module in eval mode: stays in eval

    assert not Holder().body.training


def test_torch_modules_under_a_plexus_layer_take_its_mode():
    wrapped = layers.TorchModuleWrapper(torch.nn.Sequential(torch.nn.Dropout(0.5)))
    assert not any(m.training for m in wrapped.modules())
    inp = keras.Input((4,))
    model = keras.Model(inp, wrapped(inp))
    ones = torch.ones(64, 4)
    assert torch.equal(model(ones), ones)
    model.train()
    assert not torch.equal(model(ones), ones)


def test_a_hand_written_loop_trains_dropout_and_batchnorm():
    """As Lightning and most hand loops do: `.train()`, then forward, backward, step."""
    model = build()
    probe = ModeProbe(model)
    x, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    before = moving_mean(model)
    model.train()
    for i in range(0, 32, 8):
        xb, yb = torch.as_tensor(x[i:i + 8]), torch.as_tensor(y[i:i + 8])
        loss = torch.nn.functional.mse_loss(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert probe.dropped == [True] * 4
    assert (moving_mean(model) - before).abs().min() > 0.1
    model.eval()
    with torch.no_grad():
        out = model(torch.as_tensor(x))
    np.testing.assert_allclose(out.numpy(), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_lightning_trains_dropout_and_batchnorm():
    pl = pytest.importorskip("lightning.pytorch")
    x, y = data(64)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.as_tensor(x), torch.as_tensor(y)), batch_size=16)

    class Task(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = build()
            self.modes = {"train": [], "val": []}

        def training_step(self, batch, batch_idx):
            self.modes["train"].append(self.net.get_layer("drop").training)
            return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx):
            self.modes["val"].append(self.net.get_layer("drop").training)
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    task = Task()
    probe = ModeProbe(task.net)
    before = moving_mean(task.net)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(task, loader, loader)
    assert not [w for w in caught if "eval mode" in str(w.message)]
    assert task.modes["train"] == [True] * 4
    assert task.modes["val"] and not any(task.modes["val"])
    # Dropout dropped in every training step and in no validation step.
    assert probe.dropped.count(True) == 4 and len(probe.dropped) == 4 + 1 + 4
    assert (moving_mean(task.net) - before).abs().min() > 0.1


def test_torch_wrappers_leave_the_mode_alone():
    model = build()
    torch.compile(model)  # (lazy: nothing compiles until called)
    assert model.training is False
    model.train()
    torch.compile(model)
    assert model.training is True
