"""Where does plexus spend time against the hand-written PyTorch loop? One process, no Keras.

    python bench/profile_fit.py mlp [--threads 1] [--epochs 20] [--cprofile]

Times fit epochs of plexus and of the hand-written loop alternately, in CPU seconds of this
thread (`time.thread_time`, steady on a busy machine when torch runs one thread) and wall
seconds; `--cprofile` prints the top functions of plexus's epochs.
"""
import argparse
import cProfile
import os
import pstats
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import plexus  # noqa: E402
from bench.worker import HandWritten, KerasLike  # noqa: E402
from bench.workloads import WORKLOADS  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=list(WORKLOADS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--cprofile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    wl = WORKLOADS[args.workload]
    x, y = wl.data(args.samples or wl.samples, np.random.default_rng(0))
    p, t = KerasLike("plexus"), HandWritten("torch")
    p.setup(wl, x, y)
    t.setup(wl, x, y)
    for r in (p, t):
        r.epoch()
    res = {"plexus": [], "torch": []}
    prof = cProfile.Profile() if args.cprofile else None
    for _ in range(args.epochs):
        for name, r in (("plexus", p), ("torch", t)):
            c0, w0 = time.thread_time(), time.perf_counter()
            if prof is not None and name == "plexus":
                prof.enable()
            r.epoch()
            if prof is not None and name == "plexus":
                prof.disable()
            res[name].append((time.thread_time() - c0, time.perf_counter() - w0))
    for name, v in res.items():
        cpu = sorted(a for a, _ in v)
        wall = sorted(b for _, b in v)
        print(f"{name:7s} cpu best {cpu[0]*1e3:8.2f} ms  median {cpu[len(cpu)//2]*1e3:8.2f} ms | "
              f"wall best {wall[0]*1e3:8.2f} ms median {wall[len(wall)//2]*1e3:8.2f} ms")
    a, b = sorted(c for c, _ in res["plexus"]), sorted(c for c, _ in res["torch"])
    print(f"plexus/torch cpu: best {a[0]/b[0]:.3f}, median {a[len(a)//2]/b[len(b)//2]:.3f}")
    if prof is not None:
        pstats.Stats(prof).sort_stats(os.environ.get("PLEXUS_PROFILE_SORT", "tottime")).print_stats(int(os.environ.get("PLEXUS_PROFILE_ROWS", "30")))


if __name__ == "__main__":
    main()
