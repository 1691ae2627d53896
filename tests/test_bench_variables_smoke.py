"""bench/variables.py still runs (one round, few repeats; no timing is asserted)."""
from bench.variables import run


def test_variable_bench_runs():
    results = run(rounds=1, repeat=3)
    assert len(results) == 5 and all(t > 0 for t in results.values())
