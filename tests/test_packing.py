"""Packed optimizer updates (plexus.training.packing): small weights share flat buffers.

Every packed run is compared with an unpacked reference: the same optimizer, the same weight
values and strides, the same gradients, with `PACK_MAX_NUMEL = 0` so that nothing packs.
"""
import numpy as np
import pytest
import torch

import plexus
from plexus import layers
from plexus import optimizers as O
from plexus.training import packing

# With this threshold the (11, 11) weight stays loose and the others (up to 108 elements) pack.
SMALL_LIMIT = 120
BIG, NON_DENSE = 2, 5  # indexes of the weights that must stay unpacked


def _values():
    """The test weights' values and memory layouts (fresh tensors on every call)."""
    g = torch.Generator().manual_seed(1)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    return [
        r(3),
        r(4, 2),
        r(11, 11),                                              # larger than SMALL_LIMIT
        r(4, 3, 3, 3).contiguous(memory_format=torch.channels_last),
        r(3, 4).t(),                                            # dense, transposed strides
        r(4, 6)[:, ::2],                                        # not dense: cannot pack
    ]


def _weights():
    return [torch.nn.Parameter(v) for v in _values()]


def _grads(ws, steps, seed=2):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(p.shape, generator=g) for p in ws] for _ in range(steps)]


def _run(make_opt, limit, monkeypatch, steps=3, missing=()):
    """Build `make_opt()` on fresh test weights with `PACK_MAX_NUMEL = limit`, then take `steps`
    steps; `missing` holds `(step, index)` pairs whose gradient is None."""
    monkeypatch.setattr(packing, "PACK_MAX_NUMEL", limit)
    ws = _weights()
    opt = make_opt()
    opt.build(ws)
    for s, grads in enumerate(_grads(ws, steps)):
        for i, (p, g) in enumerate(zip(ws, grads)):
            p.grad = None if (s, i) in missing else g.clone()
        opt.step()
    return ws, opt


def _assert_same(a, b, what=""):
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.shape == y.shape, f"{what} {i}"
        assert x.dtype == y.dtype, f"{what} {i}"
        np.testing.assert_allclose(x.detach().cpu().numpy(), y.detach().cpu().numpy(),
                                   rtol=1e-6, atol=1e-7, err_msg=f"{what} {i}")


def _same_storage(a, b):
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


OPTIMIZERS = {
    "sgd": lambda: O.SGD(0.1),
    "sgd_momentum": lambda: O.SGD(0.1, momentum=0.9),
    "sgd_nesterov": lambda: O.SGD(0.1, momentum=0.9, nesterov=True),
    "rmsprop": lambda: O.RMSprop(0.01),
    "rmsprop_centered": lambda: O.RMSprop(0.01, centered=True),
    "rmsprop_momentum": lambda: O.RMSprop(0.01, momentum=0.5, centered=True),
    "adam": lambda: O.Adam(0.01),
    "adam_amsgrad": lambda: O.Adam(0.01, amsgrad=True),
    "adamw": lambda: O.AdamW(0.01, weight_decay=0.1),
    "adagrad": lambda: O.Adagrad(0.1),
    "adadelta": lambda: O.Adadelta(1.0),
    "adamax": lambda: O.Adamax(0.01),
    "nadam": lambda: O.Nadam(0.01),
    "sgd_weight_decay": lambda: O.SGD(0.1, momentum=0.5, weight_decay=0.05),
    "adam_weight_decay": lambda: O.Adam(0.01, weight_decay=0.05),
    "rmsprop_clipvalue": lambda: O.RMSprop(0.01, clipvalue=0.5),
    "adam_clipvalue": lambda: O.Adam(0.01, clipvalue=0.3),
    "adam_global_clipnorm": lambda: O.Adam(0.01, global_clipnorm=1.0),
    "sgd_global_clipnorm": lambda: O.SGD(0.1, momentum=0.9, global_clipnorm=0.5),
    "adam_clipnorm": lambda: O.Adam(0.01, clipnorm=0.5),
    "sgd_clipnorm": lambda: O.SGD(0.1, clipnorm=0.5),
}


# ---------------------------------------------------------------------------- packing layout
def test_packing_layout_and_strides(monkeypatch):
    monkeypatch.setattr(packing, "PACK_MAX_NUMEL", SMALL_LIMIT)
    ws = _weights()
    strides = [p.stride() for p in ws]
    values = [p.detach().clone() for p in ws]
    opt = O.Adam(0.01)
    opt.build(ws)
    pk = opt._packing
    assert pk.active and len(pk.groups) == 1
    assert sorted(pk.loose) == [BIG, NON_DENSE]
    assert [p.stride() for p in ws] == strides, "packing changed a weight's memory layout"
    assert ws[3].is_contiguous(memory_format=torch.channels_last)
    _assert_same(ws, values, "weight")
    packed = [i for i in range(len(ws)) if i not in pk.loose]
    for i in packed:
        assert _same_storage(ws[i], pk.flat_params[0])
        assert _same_storage(opt.momentums[i], opt.momentums.packed[0])
    for i in pk.loose:
        assert not _same_storage(ws[i], pk.flat_params[0])
    # the update runs on one flat buffer plus the two loose weights' own slots
    assert len(opt.momentums.packed) == 1 + 2
    assert opt.momentums.packed[1] is opt.momentums[BIG]
    assert pk.flat_params[0].numel() == sum(ws[i].numel() for i in packed)


def test_single_small_weight_and_nothing_small_stay_loose(monkeypatch):
    monkeypatch.setattr(packing, "PACK_MAX_NUMEL", SMALL_LIMIT)
    one = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(20, 20))]
    opt = O.SGD(0.1, momentum=0.9)
    opt.build(one)
    assert not opt._packing.active
    for p in one:
        p.grad = torch.ones_like(p)
    opt.step()
    for p in one:
        np.testing.assert_allclose(p.detach().numpy(), 0.9, rtol=1e-6)


# ---------------------------------------------------------------------------- equivalence
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_packed_update_equals_unpacked(name, monkeypatch):
    make = OPTIMIZERS[name]
    ref, ref_opt = _run(make, 0, monkeypatch)
    assert ref_opt._packing is None or not ref_opt._packing.active
    ws, opt = _run(make, SMALL_LIMIT, monkeypatch)
    assert opt._packing.active and opt._packing.intact()
    _assert_same(ws, ref, "weight")
    _assert_same(opt.variables, ref_opt.variables, "slot")
    assert opt.iterations == ref_opt.iterations == 3
    changed = [not torch.equal(p, v) for p, v in zip(ws, _values())]
    assert all(changed), f"some weight was not updated: {changed}"
    assert [p.stride() for p in ws] == [v.stride() for v in _values()]


def test_packed_path_skips_per_weight_copies(monkeypatch):
    """The packed update really runs on the flat buffers: the weights keep sharing the
    parameter buffer, and the gradient views share the gradient buffer."""
    ws, opt = _run(lambda: O.SGD(0.1), SMALL_LIMIT, monkeypatch, steps=1)
    flat = opt._packing.flat_params[0]
    assert all(_same_storage(ws[i], flat) for i in (0, 1, 3, 4))
    assert _same_storage(opt._packing.flat_grads[0], opt._packing.grad_views[0][0])


def test_weights_of_two_dtypes_pack_in_two_buffers(monkeypatch):
    def run(limit):
        monkeypatch.setattr(packing, "PACK_MAX_NUMEL", limit)
        g = torch.Generator().manual_seed(4)
        ws = [torch.nn.Parameter(torch.randn(3, generator=g)),
              torch.nn.Parameter(torch.randn(2, 2, generator=g).double()),
              torch.nn.Parameter(torch.randn(4, generator=g)),
              torch.nn.Parameter(torch.randn(5, generator=g).double())]
        opt = O.Adam(0.01)
        opt.build(ws)
        for _ in range(3):
            for p in ws:
                p.grad = torch.randn(p.shape, generator=g).to(p.dtype)
            opt.step()
        return ws, opt

    ref, ref_opt = run(0)
    ws, opt = run(SMALL_LIMIT)
    assert len(opt._packing.groups) == 2 and not opt._packing.loose
    assert sorted(f.dtype == torch.float64 for f in opt._packing.flat_params) == [False, True]
    _assert_same(ws, ref, "weight")
    _assert_same(opt.variables, ref_opt.variables, "slot")


def test_sparse_gradient_of_a_packed_weight(monkeypatch):
    """A sparse gradient (torch.nn.Embedding(sparse=True)) goes into the flat gradient buffer."""
    def run(limit):
        monkeypatch.setattr(packing, "PACK_MAX_NUMEL", limit)
        torch.manual_seed(0)
        emb = torch.nn.Embedding(5, 2, sparse=True)
        bias = torch.nn.Parameter(torch.ones(3))
        opt = O.SGD(0.1)
        opt.build([emb.weight, bias])
        for ids in ([1, 2], [2, 4]):
            emb.weight.grad = None
            (emb(torch.tensor(ids)) ** 2).sum().backward()
            assert emb.weight.grad.is_sparse
            bias.grad = torch.ones(3)
            opt.step()
        return [emb.weight, bias], opt

    ref, _ = run(0)
    ws, opt = run(SMALL_LIMIT)
    assert opt._packing.active
    _assert_same(ws, ref, "weight")


# ---------------------------------------------------------------------------- missing grads
@pytest.mark.parametrize("name", ["sgd", "sgd_momentum", "adam", "rmsprop_momentum",
                                  "nadam", "adam_clipnorm"])
def test_weights_without_gradient_are_skipped(name, monkeypatch):
    make = OPTIMIZERS[name]
    missing = {(1, 0), (1, BIG), (2, 3)}
    ref, ref_opt = _run(make, 0, monkeypatch, steps=4, missing=missing)
    ws, opt = _run(make, SMALL_LIMIT, monkeypatch, steps=4, missing=missing)
    _assert_same(ws, ref, "weight")
    _assert_same(opt.variables, ref_opt.variables, "slot")

    # one step where weight 0 has no gradient: it and its slots stay, the others move
    before = [p.detach().clone() for p in ws]
    slots = [getattr(opt, n) for n in opt._slot_names() if getattr(opt, n)]
    slots_before = [s[0].detach().clone() for s in slots]
    for i, p in enumerate(ws):
        p.grad = None if i == 0 else torch.ones_like(p)
    opt.step()
    assert torch.equal(ws[0], before[0]), "a weight without gradient was updated"
    assert all(not torch.equal(p, b) for p, b in zip(ws[1:], before[1:]))
    for s, b in zip(slots, slots_before):
        assert torch.equal(s[0], b), "a slot of a weight without gradient changed"


# ---------------------------------------------------------------------------- rebinding
def _run_rebinding(monkeypatch, make, limit, steps, rebind, missing=()):
    """`steps` updates of fresh weights with packing limited to `limit` elements; `rebind(ws)`
    runs before step 1, and `(step, index)` pairs in `missing` get no gradient."""
    monkeypatch.setattr(packing, "PACK_MAX_NUMEL", limit)
    ws = _weights()
    opt = make()
    opt.build(ws)
    grads = _grads(ws, steps)
    for s in range(steps):
        if s == 1:
            rebind(ws)
        for i, (p, g) in enumerate(zip(ws, grads[s])):
            p.grad = None if (s, i) in missing else g.clone()
        opt.step()
    return ws, opt


@pytest.mark.parametrize("name", ["adam", "sgd_momentum", "rmsprop_centered", "adagrad"])
def test_rebinding_a_packed_weight_repacks(name, monkeypatch):
    def rebind(ws):  # someone gives weight 1 new storage and new values
        ws[1].data = ws[1].data * 2.0

    ref, ref_opt = _run_rebinding(monkeypatch, OPTIMIZERS[name], 0, 3, rebind)
    ws, opt = _run_rebinding(monkeypatch, OPTIMIZERS[name], SMALL_LIMIT, 3, rebind)
    _assert_same(ws, ref, "weight")
    _assert_same(opt.variables, ref_opt.variables, "slot")
    pk = opt._packing
    assert pk.intact()
    assert _same_storage(ws[1], pk.flat_params[0]), "the rebound weight was not packed again"
    assert [p.stride() for p in ws] == [v.stride() for v in _values()]
    slots = getattr(opt, opt._slot_names()[0])
    assert _same_storage(slots[1], slots.packed[0])


def test_rebinding_with_new_layout_and_missing_gradient(monkeypatch):
    """A weight rebound to another memory layout, then a step where some weight has no
    gradient (weight by weight, no repack yet), then full steps (repack)."""
    def rebind(ws):  # channels_last -> contiguous
        ws[3].data = ws[3].data.contiguous() + 1.0

    args = (OPTIMIZERS["rmsprop_momentum"], 4, rebind, {(1, 0), (2, 4)})
    ref, ref_opt = _run_rebinding(monkeypatch, args[0], 0, *args[1:])
    ws, opt = _run_rebinding(monkeypatch, args[0], SMALL_LIMIT, *args[1:])
    _assert_same(ws, ref, "weight")
    _assert_same(opt.variables, ref_opt.variables, "slot")
    assert opt._packing.intact()
    assert ws[3].is_contiguous() and _same_storage(ws[3], opt._packing.flat_params[0])


def test_rebinding_keeps_adam_moments(monkeypatch):
    """After a repack the moments carry on (a fresh Adam would take a different step)."""
    monkeypatch.setattr(packing, "PACK_MAX_NUMEL", SMALL_LIMIT)
    ws = _weights()
    opt = O.Adam(0.1)
    opt.build(ws)
    for p in ws:
        p.grad = torch.ones_like(p)
    opt.step()
    m_before = [m.detach().clone() for m in opt.momentums]
    ws[0].data = ws[0].data.clone()
    for p in ws:
        p.grad = torch.zeros_like(p)
    w_before = ws[0].detach().clone()
    opt.step()
    # zero gradient: m decays by beta_1 and the weight still moves (a fresh m would not move it)
    _assert_same(opt.momentums, [m * 0.9 for m in m_before], "momentum")
    assert (ws[0] < w_before).all()


@pytest.mark.parametrize("limit", [SMALL_LIMIT, 0], ids=["packed", "all-loose"])
def test_rebinding_to_another_dtype(limit, monkeypatch):
    monkeypatch.setattr(packing, "PACK_MAX_NUMEL", limit)
    ws = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2, 2)),
          torch.nn.Parameter(torch.ones(11, 11))]
    opt = O.Adam(0.1)
    opt.build(ws)
    for p in ws:
        p.grad = torch.ones_like(p)
    opt.step()
    for p in ws:
        p.data = p.data.double()
        p.grad = torch.ones_like(p)
    opt.step()
    assert all(p.dtype == torch.float64 for p in ws)
    assert all(m.dtype == torch.float64 for m in opt.momentums + opt.velocities)
    # two Adam steps with constant gradient 1 move every weight by 2 * lr
    for p in ws:
        np.testing.assert_allclose(p.detach().numpy(), 0.8, rtol=1e-5)


# ---------------------------------------------------------------------------- shared weights
@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_two_optimizers_sharing_a_weight(name, monkeypatch):
    make = OPTIMIZERS[name]

    def run(limit):
        monkeypatch.setattr(packing, "PACK_MAX_NUMEL", limit)
        shared = torch.nn.Parameter(torch.arange(4.0))
        a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
        opt_a, opt_b = make(), make()
        opt_a.build([shared, a])
        opt_b.build([shared, b])
        g = torch.Generator().manual_seed(3)
        for _ in range(3):
            for opt, other in ((opt_a, a), (opt_b, b)):
                shared.grad = torch.randn(4, generator=g)
                other.grad = torch.randn(other.shape, generator=g)
                opt.step()
        return [shared, a, b], (opt_a, opt_b)

    ref, _ = run(0)
    ws, (opt_a, opt_b) = run(SMALL_LIMIT)
    assert opt_a._packing.active and opt_b._packing.active
    _assert_same(ws, ref, "weight")
    if name == "sgd":  # by hand: every gradient lands in the shared weight
        g = torch.Generator().manual_seed(3)
        expected = torch.arange(4.0)
        for _ in range(3):
            for n in (3, 2):
                expected -= 0.1 * torch.randn(4, generator=g)
                torch.randn(n, generator=g)
        np.testing.assert_allclose(ws[0].detach().numpy(), expected.numpy(), rtol=1e-6,
                                   atol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "sgd_momentum", "adam"])
def test_same_weight_twice_in_one_optimizer(name, monkeypatch):
    """A weight listed twice gets both updates, packed as unpacked (a packed duplicate used
    to have two views, and the update of the first one was lost)."""
    def run(limit):
        monkeypatch.setattr(packing, "PACK_MAX_NUMEL", limit)
        w, a = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
        opt = OPTIMIZERS[name]()
        for s in range(2):
            grads = [torch.full((3,), 1.0 + s), torch.full((3,), 0.5), torch.ones(2)]
            opt.apply(grads, [w, w, a])
        return [w, a], opt

    ref, ref_opt = run(0)
    ws, opt = run(SMALL_LIMIT)
    assert opt._packing.active
    _assert_same(ws, ref, "weight")
    _assert_same(opt.variables, ref_opt.variables, "slot")
    if name == "sgd":  # `apply` goes through `.grad`: the last gradient given counts, twice
        np.testing.assert_allclose(ws[0].detach().numpy(), 1 - 0.1 * 0.5 * 2 * 2, rtol=1e-6)


# ---------------------------------------------------------------------------- model API
def _data(n=16):
    rng = np.random.default_rng(0)
    return rng.random((n, 4), dtype=np.float32), rng.random((n, 2), dtype=np.float32)


def _mlp():
    inp = plexus.Input((4,))
    h = layers.Dense(5, activation="relu")(inp)
    model = plexus.Model(inp, layers.Dense(2)(h))
    model.compile("adam", "mse")
    return model


def test_get_weights_returns_copies_after_fit():
    x, y = _data()
    model = _mlp()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert model.optimizer._packing.active
    weights = model.get_weights()
    keep = [w.copy() for w in weights]
    for w in weights:
        w[...] = 123.0
    _assert_same([torch.as_tensor(w) for w in model.get_weights()],
                 [torch.as_tensor(w) for w in keep], "weight")
    # and the optimizer still trains the model's (packed) weights
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert all(not np.array_equal(a, b) for a, b in zip(keep, model.get_weights()))


def test_conv_model_packed_matches_unpacked(monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.random((4, 6, 6, 2), dtype=np.float32)
    y = rng.random((4, 3), dtype=np.float32)

    def run(limit):
        monkeypatch.setattr(packing, "PACK_MAX_NUMEL", limit)
        plexus.clear_session()
        torch.manual_seed(0)
        inp = plexus.Input((6, 6, 2))
        h = layers.Conv2D(3, 3, activation="relu")(inp)
        h = layers.BatchNormalization()(h)
        model = plexus.Model(inp, layers.Dense(3)(layers.Flatten()(h)))
        model.compile("adam", "mse")
        model.fit(x, y, batch_size=2, epochs=2, verbose=0, shuffle=False)
        return model

    ref = run(0)
    model = run(1 << 16)
    assert model.optimizer._packing.active
    for a, b in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_save_load_resumes_training(tmp_path):
    x, y = _data()
    torch.manual_seed(0)
    model = _mlp()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    path = tmp_path / "m.keras"
    model.save(path)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)

    loaded = plexus.models.load_model(path)
    assert loaded.optimizer.iterations == 2
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert loaded.optimizer._packing.active
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    _assert_same(loaded.optimizer.variables, model.optimizer.variables, "slot")


def test_set_weights_during_training_is_effective():
    x, y = _data()
    model = _mlp()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    new = [np.full_like(w, 0.25) for w in model.get_weights()]
    model.set_weights(new)
    for a, b in zip(model.get_weights(), new):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer._packing.intact()  # set_weights writes in place
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert all(not np.array_equal(a, b) for a, b in zip(model.get_weights(), new))


# ---------------------------------------------------------------------------- module moves
def test_model_moved_and_back_keeps_training():
    """`model.double()` then `model.float()` gives every weight new storage: the optimizer
    repacks and training goes on from the current values."""
    x, y = _data()
    model = _mlp()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    iterations = model.optimizer.iterations
    model.double()
    model.float()
    assert not model.optimizer._packing.intact()
    before = model.get_weights()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert model.optimizer._packing.intact()
    assert model.optimizer.iterations == iterations + 2
    after = model.get_weights()
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))
    flat = model.optimizer._packing.flat_params[0]
    assert all(_same_storage(p, flat) for p in model.trainable_weights)


def test_model_in_float64_keeps_training():
    x, y = _data()
    model = _mlp()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    model.double()
    assert model.predict(x.astype(np.float64), verbose=0).dtype == np.float64
    before = model.get_weights()
    model.fit(x.astype(np.float64), y.astype(np.float64), batch_size=8, epochs=1, verbose=0)
    assert all(p.dtype == torch.float64 for p in model.trainable_weights)
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
