"""Time plexus against Keras 3 (JAX and torch backends) and hand-written PyTorch.

    python bench/run.py                      # everything (a few minutes on 2 cores)
    python bench/run.py --workloads mlp qa_lstm --rounds 5
    python bench/run.py --quick              # 2 rounds, fewer extras: a fast look
    python bench/run.py --load               # alone and beside a busy process, side by side

Prints Markdown tables: fit epoch time per workload (best of the interleaved rounds) and the
ratios plexus/other (below 1: plexus is faster), predict latency, peak memory in fit, InceptionV3
build time and the time `import plexus` adds to `import torch`. `--json FILE` saves the raw
answers. A contender whose library is missing is skipped with a note.

`--load` times `fit` epochs of each workload alone and then beside `--busy` busy-loop
processes, in the same workers, and prints both medians and their ratio for plexus, plexus on
torch's own thread settings (`PLEXUS_THREADS=torch`, plexus before its thread policy), Keras
on JAX and on torch, and PyTorch.
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import harness as H  # noqa: E402
from bench.workloads import WORKLOADS  # noqa: E402

ORDER = ["plexus", "plexus-jit", "keras-jax", "keras-torch", "torch"]
# --load: plexus, plexus before its thread policy (torch's thread settings), the others
LOAD_ORDER = ["plexus", "plexus-torchthreads", "keras-jax", "keras-torch", "torch"]
LOAD_WORKLOADS = ["mlp", "qa_lstm", "posts_conv1d", "ticket_lstm", "residual_cnn"]
OURS = ("plexus", "plexus-jit", "plexus-before")  # plexus-jit: the same code with compile(..., jit_compile=True)
OTHERS = (("keras-jax", "Keras-JAX"), ("keras-torch", "Keras-torch"), ("torch", "PyTorch"))
PREDICT_WORKLOADS = ("mlp", "qa_lstm", "residual_cnn", "efficientnet_b0", "convnext_tiny")


def fmt(v, digits=4):
    if v is None:
        return "—"
    return f"{v:.{digits}f}" if v < 10 else f"{v:.1f}"


def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def run_workload(workers, name, args, results):
    wl = WORKLOADS[name]
    ready = []
    for w in workers:
        ans = w.ask(cmd="setup", workload=name)
        if "error" in ans:
            print(f"  {w.name}: setup failed: {ans['error']}", file=sys.stderr)
        else:
            ready.append(w)
    # the first epoch, so that what it allocates shows (and how long compiling takes)
    mem = results.setdefault("memory", {})[name] = {}
    first = results.setdefault("first_epoch", {})[name] = {}
    for w in ready:
        ans = w.ask(cmd="memory")
        mem[w.name], first[w.name] = ans.get("peak_mib"), ans.get("first_epoch_s")
    repeat = getattr(wl, "repeat", 1)
    warm = H.interleaved(ready, args.warmup, cmd="epoch", repeat=repeat)
    ready = [w for w in ready if all("error" not in a for a in warm[w.name])]
    rounds = min(args.rounds, getattr(wl, "max_rounds", args.rounds))
    epochs = H.interleaved(ready, rounds, cmd="epoch", repeat=repeat)
    res = results.setdefault("fit", {})[name] = {}
    for w in ready:
        best, med = H.best_and_median(epochs[w.name], "epoch_s")
        cbest, _ = H.best_and_median(epochs[w.name], "call_s")
        res[w.name] = {"best": best, "median": med, "call_best": cbest,
                       "rounds": epochs[w.name]}
    ready = [w for w in ready if w.name != "plexus-jit"]  # predict does not use jit_compile
    if name in PREDICT_WORKLOADS and not args.no_predict:
        pred = results.setdefault("predict", {})[name] = {}
        for batch in getattr(wl, "predict_batches", (1, 256)):
            ans = H.interleaved(ready, 3 if not args.quick else 1, cmd="predict", batch=batch,
                                reps=20 if batch == 1 else 5, budget_s=0.15)
            direct = [w for w in ready if w.name == "plexus"]
            for w, a in H.interleaved(direct, 3 if not args.quick else 1, cmd="predict",
                                      batch=batch, direct=True, reps=20 if batch == 1 else 5,
                                      budget_s=0.15).items():
                ans[w] = [{**x, "call_s": y.get("call_s")} for x, y in zip(ans[w], a)]
            pred[batch] = {w: {"predict_s": H.best_and_median(a, "predict_s")[0],
                               "call_s": H.best_and_median(a, "call_s")[0]}
                           for w, a in ans.items()}
    print(f"  {name}: " + ", ".join(f"{w} {fmt(r['best'])}s" for w, r in res.items()),
          file=sys.stderr, flush=True)


def run_loaded(workers, name, args, results):
    """One workload alone and beside a busy process, in the same workers: alone, a warm-up
    and `--rounds` interleaved epochs; then, with the busy loop running, a warm-up and
    `--load-rounds` epochs; each side's median (the collapse comes and goes: not the best)."""
    wl = WORKLOADS[name]
    ready = []
    for w in workers:
        ans = w.ask(cmd="setup", workload=name, timeout=args.epoch_limit)
        if "error" in ans:
            print(f"  {w.name}: setup failed: {ans['error']}", file=sys.stderr)
        else:
            ready.append(w)
    repeat = getattr(wl, "repeat", 1)
    res = results.setdefault("load", {})[name] = {}

    def measure(rounds, phase):
        warm = H.interleaved(ready, args.warmup, cmd="epoch", repeat=repeat,
                             timeout=args.epoch_limit)
        live = [w for w in ready if all("error" not in a for a in warm[w.name])]
        epochs = H.interleaved(live, rounds, cmd="epoch", repeat=repeat,
                               timeout=args.epoch_limit)
        for w in ready:
            answers = epochs.get(w.name, warm[w.name])
            times = sorted(a["epoch_s"] for a in answers if "epoch_s" in a)
            err = next((a["error"] for a in warm[w.name] + answers if "error" in a), None)
            res.setdefault(w.name, {})[phase] = {
                "threads": [a["threads"] for a in answers if "threads" in a],
                "median": times[len(times) // 2] if times else None,
                "min": times[0] if times else None, "max": times[-1] if times else None,
                "runs": times, "error": err}

    measure(args.rounds, "alone")
    with H.BusyLoop(args.busy):
        measure(args.load_rounds, "loaded")
    print(f"  {name}: " + ", ".join(
        f"{w} {fmt(r['alone']['median'])}s / {fmt(r['loaded']['median'])}s"
        for w, r in res.items()), file=sys.stderr, flush=True)


def load_table(results, names):
    heads = [f"{n} alone | {n} loaded | {n} ratio" for n in names]
    lines = ["| workload | " + " | ".join(heads) + " | plexus loaded / Keras-JAX loaded |",
             "|---" * (3 * len(names) + 2) + "|"]
    for wl, res in results.get("load", {}).items():
        row = [wl]
        for n in names:
            a = res.get(n, {}).get("alone", {})
            b = res.get(n, {}).get("loaded", {})
            loaded = fmt(b.get("median"))
            if b.get("runs") and len(b["runs"]) > 1:
                loaded += f" ({fmt(b['min'])}–{fmt(b['max'])})"
            row += [fmt(a.get("median")) + _stopped(a), loaded + _stopped(b),
                    ratio(b.get("median"), a.get("median"))]
        p = res.get("plexus", {}).get("loaded", {}).get("median")
        j = res.get("keras-jax", {}).get("loaded", {}).get("median")
        row.append(ratio(p, j))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _stopped(phase):
    err = phase.get("error")
    if not err:
        return ""
    return " (stopped)" if "timeout" in err or "exited" in err else " (error)"


def load_targets(results):
    out = []
    for wl, res in results.get("load", {}).items():
        p = res.get("plexus", {})
        a, b = p.get("alone", {}).get("median"), p.get("loaded", {}).get("median")
        if a is None or b is None:
            out.append(f"- {wl}: plexus has no time")
            continue
        line = (f"- {wl}: plexus slows {b / a:.2f}x under load "
                f"({'met' if b / a <= 3 else 'NOT met'}: <= 3x)")
        j = res.get("keras-jax", {}).get("loaded", {}).get("median")
        if j:
            line += f"; {b / j:.2f}x Keras-JAX under load ({'met' if b < j else 'NOT met'}: < 1)"
        old = res.get("plexus-torchthreads", {}).get("alone", {}).get("median")
        if old:
            line += (f"; alone {a / old:.2f}x plexus on torch's threads "
                     f"({'met' if a <= 1.05 * old else 'NOT met'}: <= 1.05)")
        chosen = [p.get(k, {}).get("threads") for k in ("alone", "loaded")]
        if all(chosen):
            line += (f"; plexus's training threads per epoch: alone {chosen[0]}, "
                     f"loaded {chosen[1]}")
        out.append(line)
    return "\n".join(out)


def start_workers(args):
    """One worker per contender whose libraries are installed: (workers, notes on the skipped
    ones, the folder of their logs)."""
    log_dir = tempfile.mkdtemp(prefix="plexus-bench-")
    workers, notes = [], []
    for name in args.contenders:
        missing = H.missing_modules(name)
        if missing:
            notes.append(f"{name} skipped: {', '.join(missing)} not installed")
            continue
        workers.append(H.Worker(name, log_dir, args.threads))
    return workers, notes, log_dir


def main_load(args):
    results = {"machine": H.machine()}
    workers, notes, log_dir = start_workers(args)
    names = [w.name for w in workers]
    try:
        for wl in args.workloads:
            # a worker stopped by the epoch limit is started afresh for the next workload
            workers = [w if w.proc.poll() is None else H.Worker(w.name, log_dir, args.threads)
                       for w in workers]
            run_loaded(workers, wl, args, results)
    finally:
        for w in workers:
            w.close()
    threads = f"{args.threads} (--threads)" if args.threads else "each library's default"
    print(f"Machine: {results['machine']}; intra-op threads in the workers: {threads}\n")
    print(f"Fit under load: seconds per epoch alone (median of {args.rounds} interleaved rounds) "
          f"and beside {args.busy} busy-loop process(es) (median of {args.load_rounds} rounds, "
          f"fastest–slowest in brackets), each after {args.warmup} warm-up epoch(s); ratio = "
          f"loaded / alone; an epoch over {args.epoch_limit:.0f} s stops that contender\n")
    print(load_table(results, names))
    print("\nTargets, from this run:\n")
    print(load_targets(results))
    for n in notes:
        print(f"\nNote: {n}")
    print(f"\n(worker logs: {log_dir})", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)


def fit_table(results, names):
    ours = [o for o in OURS if o in names]
    others = [(n, label) for n, label in OTHERS if n in names]
    heads = [f"{o} / {label}" for o in ours for _, label in others]
    lines = ["| workload (samples, batch) | " + " | ".join(names + heads) + " |",
             "|---" * (len(names) + len(heads) + 1) + "|"]
    for wl, res in results.get("fit", {}).items():
        w = WORKLOADS[wl]
        row = [f"{wl} ({w.samples}, {w.batch_size})"]
        row += [fmt(res.get(n, {}).get("best")) for n in names]
        for o in ours:
            p = res.get(o, {})
            for other, _ in others:
                q = res.get(other, {})
                row.append(f"{ratio(p.get('best'), q.get('best'))} "
                           f"({ratio(p.get('median'), q.get('median'))})")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def targets(results):
    """Lines saying which of the issue's targets this run meets (on best-of-rounds times)."""
    out = []
    for wl, res in results.get("fit", {}).items():
        for ours in OURS:
            p = res.get(ours, {}).get("best")
            if p is None:
                continue
            checks = []
            for other, limit, word in (("keras-jax", 1.0, "<"), ("keras-torch", 1.0, "<"),
                                       ("torch", 1.10, "<=")):
                o = res.get(other, {}).get("best")
                if o is None:
                    continue
                ok = p / o < limit if word == "<" else p / o <= limit
                checks.append(f"{'met' if ok else 'NOT met'}: {p / o:.2f}x {other} "
                              f"({word} {limit})")
            out.append(f"- fit {wl}, {ours}: " + "; ".join(checks))
    for wl, per_batch in results.get("predict", {}).items():
        res = per_batch.get(1, {})
        p, t = res.get("plexus", {}).get("predict_s"), res.get("torch", {}).get("predict_s")
        if p and t:
            out.append(f"- predict {wl} batch 1: {'met' if p / t <= 1.2 else 'NOT met'}: "
                       f"{p / t:.2f}x PyTorch (<= 1.2)")
    if "import" in results:
        extra = results["import"][1]
        out.append(f"- import plexus: {'met' if extra < 0.3 else 'NOT met'}: +{extra:.3f} s "
                   "(< 0.3 s)")
    return "\n".join(out)


def predict_table(results, names):
    lines = ["| workload, batch | " + " | ".join(f"{n} predict" for n in names) +
             " | plexus model(x) | plexus predict / PyTorch |", "|---" * (len(names) + 3) + "|"]
    for wl, per_batch in results.get("predict", {}).items():
        for batch, res in per_batch.items():
            row = [f"{wl}, {batch}"]
            row += [fmt(1e3 * res[n]["predict_s"], 3) if res.get(n, {}).get("predict_s")
                    else "—" for n in names]
            p, t = res.get("plexus", {}), res.get("torch", {})
            row.append(fmt(1e3 * p["call_s"], 3) if p.get("call_s") else "—")
            row.append(ratio(p.get("predict_s"), t.get("predict_s")))
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="*", default=list(WORKLOADS), choices=list(WORKLOADS))
    ap.add_argument("--contenders", nargs="*", default=None,
                    choices=ORDER + ["plexus-torchthreads", "plexus-before"])
    ap.add_argument("--before", default=None, metavar="PATH",
                    help="also run plexus imported from the checkout at PATH (contender "
                         "plexus-before): a change's before and after in one run")
    ap.add_argument("--load", action="store_true",
                    help="fit each workload alone and beside a busy process, side by side")
    ap.add_argument("--load-rounds", type=int, default=5,
                    help="--load: epochs under load per contender (their median is shown)")
    ap.add_argument("--busy", type=int, default=1, help="--load: busy-loop processes")
    ap.add_argument("--epoch-limit", type=float, default=120.0,
                    help="--load: seconds an epoch may take before its contender is stopped")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None,
                    help="intra-op threads for every contender (default: each library's own)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-predict", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.before:
        if not os.path.isdir(os.path.join(args.before, "plexus")):
            ap.error(f"--before {args.before!r}: no plexus package there (give the root of "
                     "a plexus checkout)")
        os.environ["PLEXUS_BENCH_BEFORE"] = os.path.abspath(args.before)
    if args.quick:
        args.warmup = 1
    if args.contenders is None:
        args.contenders = LOAD_ORDER if args.load else ORDER
    if "plexus-before" in args.contenders and not args.before:
        ap.error("contender plexus-before needs --before PATH (the checkout to run it from)")
    if args.before and "plexus-before" not in args.contenders:
        args.contenders = args.contenders[:1] + ["plexus-before"] + args.contenders[1:]
    if args.load:
        if args.workloads == list(WORKLOADS):
            args.workloads = LOAD_WORKLOADS
        return main_load(args)

    results = {"machine": H.machine()}
    workers, notes, log_dir = start_workers(args)
    names = [w.name for w in workers]
    try:
        for wl in args.workloads:
            run_workload(workers, wl, args, results)
        if not args.quick:
            results["build"] = {}
            for w in (w for w in workers if w.name != "plexus-jit"):
                ans = w.ask(cmd="build", what="inception_v3")
                if "build_s" in ans:
                    results["build"][w.name] = ans["build_s"]
    finally:
        for w in workers:
            w.close()
    results["import"] = H.import_overhead(3 if args.quick else 5)

    threads = f"{args.threads} (--threads)" if args.threads else "each library's default"
    print(f"Machine: {results['machine']}; intra-op threads in the workers: {threads}\n")
    print("Fit: seconds per epoch (from the epoch-begin to the epoch-end callback), best of "
          f"{args.rounds} interleaved rounds (3 for the heavy workloads) after "
          f"{args.warmup} warm-up; ratios of bests (of medians)\n")
    print(fit_table(results, names))
    if results.get("predict"):
        print("\nPredict latency: milliseconds per call (median), `predict(x)` on NumPy; "
              "PyTorch: the module called under no_grad on torch.from_numpy(x)\n")
        print(predict_table(results, names))
    if results.get("memory"):
        print("\nPeak memory in fit: MiB the process's peak resident size rose above its size "
              "after building the model, during the first epoch (JAX compiles in it)\n")
        print("| workload | " + " | ".join(names) + " |\n" + "|---" * (len(names) + 1) + "|")
        for wl, mem in results["memory"].items():
            print(f"| {wl} | " + " | ".join(fmt(mem.get(n), 1) if mem.get(n) is not None
                                             else "—" for n in names) + " |")
    if results.get("first_epoch"):
        print("\nFirst epoch, seconds (compiling included: XLA for Keras-JAX, torch.compile for "
              "plexus-jit)\n")
        print("| workload | " + " | ".join(names) + " |\n" + "|---" * (len(names) + 1) + "|")
        for wl, first in results["first_epoch"].items():
            print(f"| {wl} | " + " | ".join(fmt(first.get(n)) if first.get(n) is not None
                                             else "—" for n in names) + " |")
    if results.get("build"):
        print("\nInceptionV3(weights=None) build time, seconds: " + ", ".join(
            f"{n} {v:.2f}" for n, v in results["build"].items()))
    t, p = results["import"]
    print(f"\nimport torch {t:.2f} s; import plexus after it adds {p:.3f} s (median of runs)")
    print("\nTargets, from this run:\n")
    print(targets(results))
    for n in notes:
        print(f"\nNote: {n}")
    print(f"\n(worker logs: {log_dir})", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)


if __name__ == "__main__":
    main()
