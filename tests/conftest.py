"""Test set-up: Keras (the oracle) runs on its torch backend; names restart for every test."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import plexus  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_names_and_seed():
    plexus.clear_session(free_memory=False)
    torch.manual_seed(0)
    np.random.seed(0)
    yield
