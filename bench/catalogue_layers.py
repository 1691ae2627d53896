"""Time the newer layers (GroupQueryAttention, ConvLSTM2D, EinsumDense, RMSNormalization,
AdaptiveAveragePooling2D, SpectralNormalization) in plexus against Keras 3 on its torch backend,
forward + backward on the same weights and data.

    python bench/catalogue_layers.py [cpu|cuda] [rounds]

Rounds are interleaved in random order and the best time of each is kept, so machine noise hits
both alike. Before timing, each pair is checked to give the same outputs.
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, ".")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.harness import best_times  # noqa: E402


def cases(small=False):
    """(name, make(lib) -> layer, input shapes, call kwargs); `small` for the smoke test."""
    b, t = (2, 4) if small else (32, 128)
    img = (2, 3, 8, 8, 2) if small else (8, 10, 32, 32, 8)
    return [
        ("GroupQueryAttention causal",
         lambda L: L.GroupQueryAttention(head_dim=32, num_query_heads=8,
                                         num_key_value_heads=2),
         [(b, t, 256), (b, t, 256)], {"use_causal_mask": True}),
        ("ConvLSTM2D", lambda L: L.ConvLSTM2D(16, 3, padding="same"), [img], {}),
        ("EinsumDense abc,cde->abde",
         lambda L: L.EinsumDense("abc,cde->abde", (None, 8, 32), bias_axes="de"),
         [(b, t, 256)], {}),
        ("RMSNormalization", lambda L: L.RMSNormalization(), [(b, t, 256)], {}),
        ("AdaptiveAveragePooling2D", lambda L: L.AdaptiveAveragePooling2D(7),
         [(b, 30, 30, 64)], {}),
        ("SpectralNormalization(Dense) training",
         lambda L: L.SpectralNormalization(L.Dense(512)), [(b * 4, 512)], {"training": True}),
    ]


def _pair(make, shapes, kwargs, dev):
    import keras
    from plexus import layers
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=s).astype("float32") for s in shapes]
    p, k = make(layers), make(keras.layers)
    p(*xs, **kwargs)
    k(*xs, **kwargs)
    k.set_weights(p.get_weights())
    p.to(dev)
    k.to(dev)
    tensors = [torch.tensor(x, device=dev, requires_grad=True) for x in xs]
    out_p, out_k = p(*tensors, **kwargs), k(*tensors, **kwargs)
    if "training" not in kwargs:  # a training call changes the weights it runs with
        assert torch.allclose(out_p, out_k, atol=1e-4, rtol=1e-4), "outputs differ"
    return {"plexus": lambda: p(*tensors, **kwargs).sum().backward(),
            "keras-torch": lambda: k(*tensors, **kwargs).sum().backward()}


def run(dev="cpu", rounds=20, small=False):
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    results = {}
    for name, make, shapes, kwargs in cases(small):
        results[name] = best_times(_pair(make, shapes, kwargs, dev), rounds, sync)
    return results


def main():
    dev = sys.argv[1] if len(sys.argv) > 1 else "cpu"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    print(f"forward + backward, best of {rounds} interleaved rounds, {dev}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'layer':42s} {'plexus ms':>10s} {'keras-torch ms':>15s} {'ratio':>6s}")
    for name, best in run(dev, rounds).items():
        p, k = best["plexus"] * 1e3, best["keras-torch"] * 1e3
        print(f"{name:42s} {p:10.2f} {k:15.2f} {p / k:6.2f}")


if __name__ == "__main__":
    main()
