"""What weights that are `plexus.Variable`s (an `nn.Parameter` subclass) cost torch kernels:
the same op on a plain tensor, an `nn.Parameter` and a `plexus.Variable`, and one eager `Dense`
call, forward only and forward + backward.

    python bench/variables.py [rounds]

torch checks every tensor argument of a subclass for `__torch_function__`, so each op with a
Variable argument pays a fixed overhead (about 0.4 us per argument measured on a 2-core CPU);
the table shows it next to the op's own time. Rounds are interleaved (bench.harness).
"""
import sys

sys.path.insert(0, ".")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.harness import best_times  # noqa: E402


def run(rounds=30, repeat=2000, size=16):
    from plexus import layers
    from plexus.variables import Variable, Weight
    torch.manual_seed(0)
    x = torch.rand(8, size)
    w, b = torch.rand(size, size), torch.rand(size)
    weights = {
        "tensor": (w, b),
        "nn.Parameter": (torch.nn.Parameter(w.clone()), torch.nn.Parameter(b.clone())),
        "plexus.Variable": (Variable._from_tensor(w.clone(), Weight("w", "w", w.shape)),
                            Variable._from_tensor(b.clone(), Weight("b", "b", b.shape))),
    }
    dense = layers.Dense(size)
    dense(x)

    def loop(fn):
        def timed():
            for _ in range(repeat):
                fn()
        return timed

    def train_step():
        dense(x).sum().backward()

    fns = {f"F.linear, {k}": loop(lambda a=a: F.linear(x, *a)) for k, a in weights.items()}
    with torch.no_grad():
        best = best_times(fns, rounds)
        best.update(best_times({"Dense call (no grad)": loop(lambda: dense(x))}, rounds))
    best.update(best_times({"Dense forward + backward": loop(train_step)}, rounds))
    return {k: v / repeat * 1e6 for k, v in best.items()}


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    torch.set_num_threads(1)
    for name, us in run(rounds).items():
        print(f"{name:32s} {us:8.2f} us")
