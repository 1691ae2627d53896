"""`plexus.quantizers` against `keras.quantizers`."""
import json

import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import quantizers as P
from tests.parity.oracle import assert_close

K = keras.quantizers
X = np.random.default_rng(0).normal(size=(4, 6, 3)).astype("float32")


@pytest.mark.parametrize("axis,value_range,to_numpy", [
    (-1, (-127, 127), False), (0, (-127, 127), True), ((0, 2), (-8, 7), False),
    (1, (-128, 127), True)])
def test_abs_max_quantize_matches_keras(axis, value_range, to_numpy):
    q, scale = P.abs_max_quantize(X, axis, value_range, to_numpy=to_numpy)
    kq, kscale = K.abs_max_quantize(torch.as_tensor(X), axis, value_range, to_numpy=to_numpy)
    assert q.dtype == torch.int8 and scale.dtype == torch.float32
    assert torch.equal(q, torch.as_tensor(np.asarray(kq)))
    assert_close(scale, np.asarray(kscale))
    assert int(q.abs().max()) == value_range[1]  # the largest magnitude maps to the top


@pytest.mark.parametrize("shape,block_size,value_range,to_numpy", [
    ((10, 6), 4, (-8, 7), False), ((8, 3), 4, (-8, 7), True), ((12, 5), 12, (-128, 127), True),
    ((7, 2), 2, (-8, 7), True)])
def test_grouped_quantize_with_zero_point_matches_keras(shape, block_size, value_range,
                                                        to_numpy):
    x = np.random.default_rng(3).normal(size=shape).astype("float32") + 0.5
    out = P.abs_max_quantize_grouped_with_zero_point(x, block_size, value_range)
    expected = K.abs_max_quantize_grouped_with_zero_point(torch.as_tensor(x), block_size,
                                                          value_range, to_numpy=to_numpy)
    for got, want in zip(out, expected):
        assert got.dtype == torch.as_tensor(np.asarray(want)).dtype
        assert_close(got.double(), torch.as_tensor(np.asarray(want)).double(), atol=1e-6)
    assert out[1].shape == (-(-shape[0] // block_size), shape[1])


def test_abs_max_quantizer_object_config_and_get():
    quantizer = P.AbsMaxQuantizer(axis=0, value_range=(-100, 100))
    q, scale = quantizer(X)
    kq, _ = K.AbsMaxQuantizer(axis=0, value_range=(-100, 100))(torch.as_tensor(X))
    assert torch.equal(q, torch.as_tensor(np.asarray(kq)))
    assert quantizer.get_config() == K.AbsMaxQuantizer(
        axis=0, value_range=(-100, 100)).get_config()
    config = json.loads(json.dumps(P.serialize(quantizer)))
    assert config == json.loads(json.dumps(K.serialize(
        K.AbsMaxQuantizer(axis=0, value_range=(-100, 100)))))
    again = P.deserialize(config)
    assert isinstance(again, P.AbsMaxQuantizer) and again.axis == (0,)
    assert isinstance(K.deserialize(config), K.AbsMaxQuantizer)
    assert isinstance(P.get("abs_max_quantizer"), P.AbsMaxQuantizer)
    assert P.get("AbsMaxQuantizer", value_range=(-5, 5)).value_range == (-5, 5)
    assert P.get(quantizer) is quantizer and P.get(None) is None
    assert P.Quantizer()(X) is X
    with pytest.raises(ValueError, match="value_range"):
        P.AbsMaxQuantizer(value_range=(-300, 300))
    with pytest.raises(ValueError, match="Could not interpret"):
        P.get(3)
    with pytest.raises(NotImplementedError):
        P.Quantizer().get_config()


@pytest.mark.parametrize("num_bits,narrow_range,lo,hi", [
    (8, False, -1.5, 2.0), (4, True, -0.5, 1.0), (3, False, 0.2, 1.7)])
def test_fake_quant_matches_keras_with_gradients(num_bits, narrow_range, lo, hi):
    x = torch.tensor(X * 1.5, requires_grad=True)
    lo_t, hi_t = torch.tensor(lo, requires_grad=True), torch.tensor(hi, requires_grad=True)
    out = P.fake_quant_with_min_max_vars(x, lo_t, hi_t, num_bits, narrow_range)
    kx = torch.tensor(X * 1.5, requires_grad=True)
    klo, khi = torch.tensor(lo, requires_grad=True), torch.tensor(hi, requires_grad=True)
    k_out = K.fake_quant_with_min_max_vars(kx, klo, khi, num_bits, narrow_range)
    assert_close(out.detach(), k_out.detach(), atol=1e-6)
    weights = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
    (out * weights).sum().backward()
    (k_out * weights).sum().backward()
    assert_close(x.grad, kx.grad)
    assert_close(lo_t.grad, klo.grad, atol=1e-5)
    assert_close(hi_t.grad, khi.grad, atol=1e-5)
    assert len(torch.unique(out.detach())) <= 2 ** num_bits


def test_fake_quant_per_channel_matches_keras():
    lo, hi = torch.tensor([-1.0, -0.3, 0.0]), torch.tensor([1.0, 2.0, 0.9])
    out = P.fake_quant_with_min_max_vars(X, lo, hi, 8, False, axis=-1)
    expected = K.fake_quant_with_min_max_vars(torch.as_tensor(X), lo, hi, 8, False, axis=-1)
    assert_close(out, expected, atol=1e-6)
    # another axis: each channel along it uses its own range
    moved = P.fake_quant_with_min_max_vars(np.moveaxis(X, -1, 0), lo, hi, 8, False, axis=0)
    assert_close(torch.movedim(moved, 0, -1), out, atol=1e-6)


def test_float8_helpers_match_keras():
    for amax, scale in ((3.0, 2.0), (0.0, 2.0), (float("inf"), 0.5)):
        args = (torch.tensor(amax), torch.tensor(scale), 448.0)
        assert_close(P.compute_float8_scale(*args, margin=1),
                     K.compute_float8_scale(*args, margin=1))
    history = torch.tensor([1.0, 2.0, 3.0])
    assert_close(P.compute_float8_amax_history(torch.tensor([1.0, -5.0]), history),
                 K.compute_float8_amax_history(torch.tensor([1.0, -5.0]), history))
    x = torch.tensor([1.3, 500.0, -0.01, -1e4])
    for dtype in ("float8_e4m3fn", "float8_e5m2"):
        assert_close(P.quantize_and_dequantize(x, torch.tensor(0.5), dtype, "float32"),
                     K.quantize_and_dequantize(x, torch.tensor(0.5), dtype, "float32"))


@pytest.mark.parametrize("shape,axis,dtype", [((3, 2), 0, "int8"), ((2, 3), 1, "int8"),
                                              ((5, 4, 2), 1, "int8"), ((4, 3), 0, "uint8")])
def test_int4_packing_matches_keras(shape, axis, dtype):
    rng = np.random.default_rng(1)
    low, high = (-8, 8) if dtype == "int8" else (0, 16)
    arr = rng.integers(low, high, size=shape).astype(dtype)
    packed, packed_shape, n = P.pack_int4(arr, axis, dtype)
    k_packed, k_shape, k_n = K.pack_int4(torch.as_tensor(arr), axis, dtype)
    assert torch.equal(packed, torch.as_tensor(np.asarray(k_packed)))
    assert (packed_shape, n) == (tuple(k_shape), k_n)
    unpacked = P.unpack_int4(packed, n, axis, dtype)
    assert torch.equal(unpacked, torch.as_tensor(arr))
    assert torch.equal(unpacked, torch.as_tensor(np.asarray(
        K.unpack_int4(k_packed, k_n, axis, dtype))))


def test_int4_documented_example_and_errors():
    packed, _, n = P.pack_int4(np.array([[-3, 7], [2, -8], [1, 0]], np.int8))
    assert packed.tolist() == [[45, -121], [1, 0]] and n == 3
    with pytest.raises(TypeError, match="int8"):
        P.pack_int4(np.zeros((2, 2), np.int32))
    with pytest.raises(ValueError, match="'int8' or 'uint8'"):
        P.unpack_int4(packed, 3, dtype="int4")
