"""Every script in examples/ runs on small data and saves its plot.

Each example runs in this process (runpy) with PLEXUS_EXAMPLES_SMALL=1 and an output folder in
tmp_path. An example is skipped only while a module it needs cannot be imported yet.
"""
import importlib
import os
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# example -> (names it needs as (module, attribute), files it must write)
CASES = {
    "sequential_vs_functional": ([], ["sequential.png", "functional.png"]),
    "qa_two_inputs": ([("plexus.layers", "LSTM")], ["qa_two_inputs.png"]),
    "posts_three_outputs": ([("plexus.layers", "Conv1D"), ("plexus.layers", "MaxPooling1D"),
                             ("plexus.layers", "GlobalMaxPooling1D")], ["posts_three_outputs.png"]),
    "ticket_routing": ([("plexus.layers", "LSTM")], ["ticket_routing.png"]),
    "inception_module": ([("plexus.layers", "Conv2D"), ("plexus.layers", "AveragePooling2D"),
                          ("plexus.layers", "GlobalAveragePooling2D")], ["inception_module.png"]),
    "residual_blocks": ([("plexus.layers", "Conv2D"), ("plexus.layers", "MaxPooling2D")],
                        ["residual_blocks.png"]),
    "siamese_lstm": ([("plexus.layers", "LSTM")], ["siamese_lstm.png"]),
    "shared_xception": ([("plexus.applications", "Xception")],
                        ["shared_xception.png", "shared_xception_expanded.svg"]),
    "vgg19_features": ([("plexus.applications", "VGG19")], ["vgg19_features.png"]),
}


def _missing(needs):
    for module, attr in [("matplotlib", None)] + needs:
        try:
            mod = importlib.import_module(module)
        except ImportError as err:
            return f"{module} cannot be imported yet ({err})"
        if attr is not None and not hasattr(mod, attr):
            return f"{module}.{attr} does not exist yet"
    return None


def test_every_example_is_listed():
    scripts = {p.stem for p in EXAMPLES.glob("*.py")} - {"quickstart"}
    assert scripts == set(CASES), (
        f"examples not run by this test: {sorted(scripts - set(CASES))}; listed but missing: "
        f"{sorted(set(CASES) - scripts)}. Add new examples to CASES.")


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name, tmp_path, monkeypatch, capsys):
    needs, files = CASES[name]
    reason = _missing(needs)
    if reason:
        pytest.skip(reason)
    monkeypatch.setenv("PLEXUS_EXAMPLES_SMALL", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / f"{name}.py"), str(tmp_path / "out")])
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "Total params" in out  # the summary was printed
    for file in files:
        data = (tmp_path / "out" / file).read_bytes()
        magic = b"\x89PNG" if file.endswith(".png") else b"<?xml"
        assert data.startswith(magic), file
    assert not [p for p in os.listdir(tmp_path) if p != "out"]  # nothing written elsewhere
