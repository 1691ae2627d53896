"""`ModelParallel`: parameters sharded with torch FSDP2 (filled in below)."""
import contextlib


@contextlib.contextmanager
def gathered(model):
    yield


def shard_model(model, distribution):
    pass
