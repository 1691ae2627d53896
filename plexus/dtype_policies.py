"""`plexus.dtype_policies`: the dtype policy classes and their (de)serialization."""
from plexus.mixed_precision.policy import (  # noqa: F401
    DTypePolicy, FloatDTypePolicy, deserialize, get, serialize)
