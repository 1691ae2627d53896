"""Predict through the exports against `model.predict`, for the seed workloads.

    python bench/export_predict.py                      # every workload, batches 1 and 256
    python bench/export_predict.py --workloads mlp residual_cnn --rounds 20

For each workload the model is exported with `model.export(..., format="onnx")` (run by ONNX
Runtime) and `format="torch"` (`torch.export.load(...).module()` under `torch.no_grad()`), and
the three are timed on the same batch (best of `--rounds`, in a fresh random order each round).
Axes a workload leaves free besides the batch (sequence lengths) are fixed to its data's, as
recurrent layers are traced for one length. Needs the `export` extra (onnx, onnxscript,
onnxruntime).
"""
import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import best_times, machine  # noqa: E402
from bench.workloads import WORKLOADS  # noqa: E402


def run(name, batches, rounds, tmp):
    import onnxruntime as ort
    import torch

    import plexus
    wl = WORKLOADS[name]
    plexus.clear_session()
    model = wl.build(plexus)
    x, _ = wl.data(max(batches), np.random.default_rng(0))
    signature = [(None,) + tuple(a.shape[1:]) for a in x]
    t = time.perf_counter()
    onnx_path = model.export(os.path.join(tmp, f"{name}.onnx"), format="onnx",
                             input_signature=signature)
    onnx_s = time.perf_counter() - t
    t = time.perf_counter()
    pt2_path = model.export(os.path.join(tmp, f"{name}.pt2"), format="torch",
                            input_signature=signature)
    pt2_s = time.perf_counter() - t
    sess = ort.InferenceSession(onnx_path)
    program = torch.export.load(pt2_path).module()
    rows = []
    for b in batches:
        xb = [a[:b] for a in x]
        feed = {i.name: a for i, a in zip(sess.get_inputs(), xb)}
        tb = [torch.as_tensor(a) for a in xb]
        arg = tb[0] if len(tb) == 1 else tb
        data = xb[0] if len(xb) == 1 else xb

        def exported():
            with torch.no_grad():
                return program(arg)

        fns = {"predict": lambda: model.predict(data, batch_size=b, verbose=0),
               "onnxruntime": lambda: sess.run(None, feed), "torch.export": exported}
        for fn in fns.values():  # warm-up (and a check that all three agree)
            fn()
        ref = model.predict(data, batch_size=b, verbose=0)
        ref = ref if isinstance(ref, list) else [ref]
        err = max(float(np.abs(o - r).max()) for o, r in zip(sess.run(None, feed), ref))
        best = best_times(fns, rounds)
        rows.append((name, b, best["predict"], best["onnxruntime"], best["torch.export"], err))
    return rows, onnx_s, pt2_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="*", default=[
        "mlp", "qa_lstm", "posts_conv1d", "ticket_lstm", "residual_cnn", "ops_mlp"],
        choices=sorted(WORKLOADS))
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 256])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import logging
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    print(machine())
    print("| workload | batch | predict ms | ONNX Runtime ms (×) | torch.export ms (×) | "
          "max |ONNX − predict| | export s (onnx / pt2) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.workloads:
            rows, onnx_s, pt2_s = run(name, args.batches, args.rounds, tmp)
            for wl, b, p, o, e, err in rows:
                print(f"| {wl} | {b} | {p * 1e3:.2f} | {o * 1e3:.2f} ({p / o:.2f}×) | "
                      f"{e * 1e3:.2f} ({p / e:.2f}×) | {err:.1e} | {onnx_s:.1f} / {pt2_s:.1f} |",
                      flush=True)
    print("(×: how many times faster than predict; above 1 the export is faster)")


if __name__ == "__main__":
    main()
