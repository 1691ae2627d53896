"""Data-parallel throughput: plexus `fit` on 2 ranks against 1 rank, and against a hand-written
torch DDP loop around the same plexus model.

    python bench/distributed.py                      # residual_cnn and ticket_lstm, gloo, CPU
    python bench/distributed.py --workloads residual_cnn --epochs 2 --threads 1
    python bench/distributed.py --nproc 2 --device cuda   # NCCL, one GPU per rank

Each case runs under `torchrun --standalone --nproc_per_node=N` (ranks x threads fixed: every
rank uses `--threads` intra-op threads). Contenders, all on the workload's global batch:

- `plexus-1`: `fit` in one process (no distribution);
- `plexus-N`: `set_distribution(DataParallel())`, then the same `fit` on N ranks;
- `ddp-N`: the same plexus model wrapped in `torch.nn.parallel.DistributedDataParallel`, a
  hand-written loop (`DistributedSampler`, zero_grad, forward, the torch loss, backward,
  `torch.optim.RMSprop` with Keras's rho/epsilon).

One untimed epoch warms up, then `--epochs` epochs are timed; rank 0 reports samples/second.
Ratios: `plexus-N / plexus-1` (goal >= 1.7 for N = 2) and `ddp-N / plexus-N` (goal <= 1.10).
On a machine that other work shares, the ratios say little: report the load with them.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))


def _loss_fn(name):
    import torch
    F = torch.nn.functional
    if name == "residual_cnn":
        return lambda outs, ys: F.cross_entropy(torch.log(outs.clamp_min(1e-7)), ys[0])
    return lambda outs, ys: (F.binary_cross_entropy(outs[0].clamp(1e-7, 1 - 1e-7), ys[0])
                             + 0.2 * F.cross_entropy(torch.log(outs[1].clamp_min(1e-7)), ys[1]))


def worker(args):
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    import plexus
    from workloads import WORKLOADS
    wl = WORKLOADS[args.workload]
    kind = args.contender.split("-")[0]
    if kind == "plexus" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        plexus.distribution.set_distribution(plexus.distribution.DataParallel())
    elif kind == "ddp":
        plexus.distribution.initialize()
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    n = args.samples or wl.samples
    xs, ys = wl.data(n, np.random.default_rng(0))
    plexus.utils.set_random_seed(0)
    model = wl.build(plexus)
    device = torch.device(args.device if args.device == "cpu" else f"cuda:{rank}")
    if device.type == "cuda":
        model.to(device)
    bs = wl.batch_size
    epochs = args.epochs
    if kind == "plexus":
        model.fit(xs, ys, batch_size=bs, epochs=1, verbose=0)  # warm-up
        t0 = time.perf_counter()
        model.fit(xs, ys, batch_size=bs, epochs=epochs, verbose=0)
        elapsed = time.perf_counter() - t0
    else:
        from torch.nn.parallel import DistributedDataParallel as DDP
        ddp = DDP(model, device_ids=[rank] if device.type == "cuda" else None)
        loss_fn = _loss_fn(args.workload)
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
        tx = [torch.as_tensor(x, device=device) for x in xs]
        ty = [torch.as_tensor(y, device=device) for y in ys]
        sampler = torch.utils.data.distributed.DistributedSampler(range(n), world, rank)
        local = bs // world

        def epoch(e):
            sampler.set_epoch(e)
            idx = torch.tensor(list(sampler), device=device)
            total = torch.zeros((), device=device)
            for s in range(0, len(idx), local):
                b = idx[s:s + local]
                opt.zero_grad(set_to_none=True)
                outs = ddp([t[b] for t in tx] if len(tx) > 1 else tx[0][b])
                loss = loss_fn(outs, [t[b] for t in ty])
                loss.backward()
                opt.step()
                total += loss.detach()
            return float(total)
        epoch(0)  # warm-up
        t0 = time.perf_counter()
        for e in range(epochs):
            epoch(e + 1)
        elapsed = time.perf_counter() - t0
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    if rank == 0:
        print("RESULT " + json.dumps({"workload": args.workload, "contender": args.contender,
                                      "samples_per_s": n * epochs / elapsed,
                                      "seconds": elapsed}), flush=True)


def run_case(workload, contender, args):
    nproc = int(contender.split("-")[1])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", os.path.abspath(__file__), "--worker",
           "--workload", workload, "--contender", contender, "--threads", str(args.threads),
           "--epochs", str(args.epochs), "--device", args.device,
           "--samples", str(args.samples or 0)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{workload}/{contender} failed:\n{out.stdout[-2000:]}\n"
                       f"{out.stderr[-3000:]}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workload", default=None, help=argparse.SUPPRESS)
    p.add_argument("--contender", default=None, help=argparse.SUPPRESS)
    p.add_argument("--workloads", nargs="+", default=["residual_cnn", "ticket_lstm"])
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--samples", type=int, default=0, help="samples per epoch (0: workload's)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--timeout", type=int, default=900)
    args = p.parse_args()
    if args.worker:
        args.samples = args.samples or None
        return worker(args)
    n = args.nproc
    rows = []
    for wl in args.workloads:
        res = {c: run_case(wl, c, args) for c in ("plexus-1", f"plexus-{n}", f"ddp-{n}")}
        speed = {c: r["samples_per_s"] for c, r in res.items()}
        rows.append((wl, speed))
        print(f"{wl}: " + ", ".join(f"{c} {v:.1f} samples/s" for c, v in speed.items())
              + f"; plexus-{n}/plexus-1 {speed[f'plexus-{n}'] / speed['plexus-1']:.2f}x"
              + f"; ddp-{n}/plexus-{n} {speed[f'ddp-{n}'] / speed[f'plexus-{n}']:.2f}x",
              flush=True)
    try:
        load = os.getloadavg()
        print(f"load average {load[0]:.1f} on {os.cpu_count()} CPUs "
              f"(ratios are unreliable when it exceeds the CPUs)")
    except OSError:
        pass
    return rows


if __name__ == "__main__":
    main()
