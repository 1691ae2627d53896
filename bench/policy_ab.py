"""What plexus's thread policy costs or gains, with the noise of separate processes taken out.

    python bench/policy_ab.py [--workloads ...] [--rounds 15] [--busy 0|1]

One process per workload builds the workload's plexus model once and times `fit` epochs with
the policy "auto" (plexus's default: `plexus/training/threads.py`) and "torch" (torch's own
thread settings, as plexus ran before its policy) alternately, in ABBA order, after one warm-up
epoch of each. Both policies train the same model, so the two columns differ only by the
policy. `bench/run.py --load` compares separate worker processes, whose epoch times on the
recurrent workloads move by 10-30% with the process (its allocator's history; see
bench/README.md, "Noise"): too much to check a 5% goal. Here the epochs of the two policies
share the process, interleaved.

`--busy 1` runs one busy-loop process beside the epochs (both policies under the same load);
with torch's threads an epoch may then take many times longer: `--epoch-limit` (60 s) stops a
workload whose epoch takes longer.

Prints, per workload: the median epoch of each policy (fastest-slowest in brackets), auto /
torch, and the thread counts the policy trained with.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def one_workload(name, rounds, limit):
    """Runs in a child process: the A/B of one workload. Prints one result line."""
    import json

    import plexus
    from bench.worker import KerasLike
    from bench.workloads import WORKLOADS

    wl = WORKLOADS[name]
    x, y = wl.data(wl.samples, np.random.default_rng(0))
    runner = KerasLike("plexus")
    runner.setup(wl, x, y)
    times, threads = {"auto": [], "torch": []}, []
    order = ("auto", "torch")
    before = plexus.config.thread_policy()
    try:
        for r in range(rounds + 1):
            for policy in (order if r % 2 else order[::-1]):
                plexus.config.set_thread_policy(policy)
                start = time.perf_counter()
                out = runner.epoch()
                took = time.perf_counter() - start
                if took > limit:
                    print(json.dumps({"workload": name, "stopped": policy, "seconds": took}))
                    return
                if r:  # round 0: one warm-up epoch of each
                    times[policy].append(took)
                    if policy == "auto" and "threads" in out:
                        threads.append(out["threads"])
    finally:
        plexus.config.set_thread_policy(before)
    print(json.dumps({"workload": name, "times": times, "threads": threads}))


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def main():
    import json

    from bench.harness import BusyLoop, machine
    from bench.workloads import WORKLOADS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", nargs="+",
                    default=["mlp", "qa_lstm", "posts_conv1d", "ticket_lstm", "residual_cnn"],
                    choices=sorted(WORKLOADS))
    ap.add_argument("--rounds", type=int, default=15, help="epochs of each policy, after warm-up")
    ap.add_argument("--busy", type=int, default=0, help="busy-loop processes beside the epochs")
    ap.add_argument("--epoch-limit", type=float, default=60.0)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # (the child process's workload)
    args = ap.parse_args()
    if args.one:
        one_workload(args.one, args.rounds, args.epoch_limit)
        return
    env = {k: v for k, v in os.environ.items() if k not in ("PLEXUS_THREADS",)}
    rows = []
    with BusyLoop(args.busy):
        for name in args.workloads:
            rounds = min(args.rounds, 2 * WORKLOADS[name].max_rounds + 1) \
                if getattr(WORKLOADS[name], "max_rounds", None) else args.rounds
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--one", name, "--rounds",
                 str(rounds), "--epoch-limit", str(args.epoch_limit)],
                env=env, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not lines:
                print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            res = json.loads(lines[-1])
            rows.append(res)
            if "stopped" in res:
                print(f"  {name}: stopped ({res['stopped']} took {res['seconds']:.1f} s)",
                      file=sys.stderr, flush=True)
            else:
                a, t = median(res["times"]["auto"]), median(res["times"]["torch"])
                print(f"  {name}: auto {a:.4f}s, torch {t:.4f}s, {a / t:.3f}x",
                      file=sys.stderr, flush=True)
    print(f"Machine: {machine()}")
    print(f"\nThread policy A/B in one process per workload: `fit` epochs with policy 'auto' and "
          f"'torch' alternately (ABBA), medians in seconds (fastest-slowest), beside "
          f"{args.busy} busy-loop process(es)\n")
    print("| workload (epochs each) | auto | torch | auto / torch | auto's threads |")
    print("|---|---|---|---|---|")
    for res in rows:
        if "stopped" in res:
            print(f"| {res['workload']} | stopped: {res['stopped']} took "
                  f"{res['seconds']:.1f} s | | | |")
            continue
        a, t = res["times"]["auto"], res["times"]["torch"]
        counts = sorted(set(res["threads"]), key=str)
        print(f"| {res['workload']} ({len(a)}) | {median(a):.4f} ({min(a):.4f}–{max(a):.4f}) | "
              f"{median(t):.4f} ({min(t):.4f}–{max(t):.4f}) | {median(a) / median(t):.3f}× | "
              f"{', '.join(map(str, counts))} |")


if __name__ == "__main__":
    main()
