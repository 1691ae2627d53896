"""bench/catalogue_layers.py still runs: each plexus/Keras pair builds, agrees on its outputs
and runs forward and backward (tiny sizes, one round; no timing is asserted)."""
from bench.catalogue_layers import run


def test_catalogue_layer_bench_runs():
    results = run("cpu", rounds=1, small=True)
    assert len(results) == 6
    assert all(set(best) == {"plexus", "keras-torch"} for best in results.values())
