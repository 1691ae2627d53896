"""Time plexus's LSTM/GRU against torch.nn.LSTM/GRU (forward + backward), with and without a mask.

    python bench/recurrent_kernels.py [cpu|cuda] [threads]

Rounds are interleaved in random order and the best time of each is kept, so machine noise hits
all alike. On a GPU it first checks that the device gives the CPU's numbers.
"""
import sys

import torch

sys.path.insert(0, ".")
from bench.harness import best_times  # noqa: E402
from plexus import layers  # noqa: E402


def bench(dev, rounds=30):
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    B, T, F, U = 128, 100, 64, 32  # the seeds' question-answering LSTM, one batch
    torch.manual_seed(0)
    x = torch.randn(B, T, F, device=dev)
    mask = torch.ones(B, T, dtype=torch.bool, device=dev)
    mask[: B // 2, 80:] = False
    for name, nn_cls, p_cls in (("LSTM", torch.nn.LSTM, layers.LSTM),
                                ("GRU", torch.nn.GRU, layers.GRU)):
        ref = nn_cls(F, U, batch_first=True).to(dev)
        p = p_cls(U)
        p(x[:1].cpu())
        p.to(dev)
        fns = {"torch.nn": lambda: ref(x)[0][:, -1].sum().backward(),
               "plexus": lambda: p(x).sum().backward(),
               "plexus masked": lambda: p(x, mask=mask).sum().backward()}
        best = best_times(fns, rounds, sync)
        print(f"{dev} {name} fwd+bwd, batch {B}, {T} steps: "
              + " | ".join(f"{k} {v * 1e3:.2f} ms" for k, v in best.items()))


def check_device_matches_cpu(dev):
    """Same weights and inputs on `dev` and on the CPU: same outputs, states and gradients."""
    torch.manual_seed(1)
    x = torch.randn(3, 6, 4)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]).bool()
    for cls in (layers.LSTM, layers.GRU, layers.SimpleRNN):
        for m in (None, mask):
            cpu = cls(5, return_sequences=True, return_state=True)
            cpu(x)
            dev_layer = cls(5, return_sequences=True, return_state=True)
            dev_layer(x)
            dev_layer.set_weights(cpu.get_weights())
            dev_layer.to(dev)
            a = cpu(x, mask=m)
            b = dev_layer(x.to(dev), mask=None if m is None else m.to(dev))
            sum(t.sum() for t in a).backward()
            sum(t.sum() for t in b).backward()
            err = max((u - v.cpu()).abs().max().item() for u, v in zip(a, b))
            gerr = max((p.grad - q.grad.cpu()).abs().max().item()
                       for p, q in zip(cpu.weights, dev_layer.weights))
            print(f"{dev} vs cpu {cls.__name__} mask={m is not None}: "
                  f"max|diff| outputs {err:.1e}, gradients {gerr:.1e}")


if __name__ == "__main__":
    device = sys.argv[1] if len(sys.argv) > 1 else "cpu"
    if len(sys.argv) > 2:
        torch.set_num_threads(int(sys.argv[2]))
    if device != "cpu":
        check_device_matches_cpu(device)
    bench(device)
