"""Training on several processes, GPUs and machines: Keras 3's `keras.distribution` API on
torch.distributed (DDP-style gradient averaging, FSDP2 sharding, `torchrun` launches).

    import plexus as keras
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    model = ...                      # build the model after set_distribution
    model.fit(x, y, batch_size=64)   # 64 is the global batch, split across the processes

Run it with `torchrun --nproc_per_node=2 train.py` (or `python train.py`: one process).
See docs/distributed.md.
"""
from plexus.distribution.distribution_lib import (  # noqa: F401
    DataParallel, DeviceMesh, Distribution, LayoutMap, ModelParallel, TensorLayout,
    distribute_tensor, distribution, get_device_count, initialize, list_devices,
    set_distribution,
)
