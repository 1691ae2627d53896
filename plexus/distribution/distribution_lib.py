"""`plexus.distribution`: Keras 3's distribution API on torch.distributed.

One process per device, as torch runs it: launch a script with `torchrun` and every process
(rank) runs the same code. `set_distribution(DataParallel())` before building the model makes
`fit`, `evaluate` and `predict` split each global batch across the ranks and average the
gradients (an all-reduce of the packed gradient buffers, see `runtime.py`);
`ModelParallel(layout_map=...)` also shards the parameters, gradients and optimizer state of
the layers the `LayoutMap` names, with torch's FSDP2 (`torch.distributed.fsdp.fully_shard`).
Without `torchrun` (one process) both run as an ordinary single-process `fit`.
"""
import collections.abc
import math
import re
import warnings

import numpy as np

from plexus.distribution import runtime

DEFAULT_BATCH_DIM_NAME = "batch"


# ---------------------------------------------------------------------- processes
def initialize(job_addresses=None, num_processes=None, process_id=None, *, backend=None,
               timeout=None):
    """Join the process group of a multi-process run.

    Under `torchrun` nothing needs passing: the rank, the world size and the rendezvous come
    from its environment (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`).
    Without them, and without arguments, this is a no-op: the script runs as one process.

    Args:
        job_addresses: `"host:port"` of the process with `process_id` 0 (a comma-separated
            list is accepted, as in Keras; its first address is used).
        num_processes: the number of processes (torchrun's `WORLD_SIZE`).
        process_id: this process's rank, from 0 to `num_processes - 1`.
        backend: `"nccl"` (GPUs) or `"gloo"` (CPUs); by default nccl when CUDA is available.
        timeout: seconds any collective operation may wait before failing with an error (a
            process that died or stopped early must not leave the others hanging); 600 by
            default, or the `PLEXUS_DISTRIBUTED_TIMEOUT` environment variable.
    """
    runtime.initialize(job_addresses, num_processes, process_id, backend, timeout)


def list_devices(device_type=None):
    """The devices of the run, one per process (`"cuda:0"`, `"cuda:1"`, ... or `"cpu:0"`, ...).

    Under `torchrun` this lists the world: a process per device, rank `i` on entry `i`. In a
    single process it is that process's one device. `device_type` (`"cpu"`, `"gpu"`/`"cuda"`)
    picks the kind; by default CUDA when available.
    """
    return runtime.list_devices(device_type)


def get_device_count(device_type=None):
    """`len(list_devices(device_type))`."""
    return len(list_devices(device_type))


# ---------------------------------------------------------------------- meshes and layouts
class DeviceMesh:
    """The devices of the run arranged in a named grid, e.g. `(2, 4)` named
    `("batch", "model")`.

    Args:
        shape: the grid's shape; its product must equal the number of devices.
        axis_names: one name per axis.
        devices: the devices (default `list_devices()`).
    """

    def __init__(self, shape, axis_names, devices=None):
        if not shape or not axis_names:
            raise ValueError(f"DeviceMesh: shape and axis_names cannot be empty; received "
                             f"shape={shape!r}, axis_names={axis_names!r}.")
        shape, axis_names = tuple(int(s) for s in shape), tuple(axis_names)
        if len(shape) != len(axis_names):
            raise ValueError(f"DeviceMesh: shape and axis_names must have the same length; "
                             f"received shape={shape}, axis_names={axis_names}.")
        if len(set(axis_names)) != len(axis_names):
            raise ValueError(f"DeviceMesh: axis names must differ; received {axis_names}.")
        devices = np.array(list_devices() if devices is None else devices, dtype=object)
        if math.prod(shape) != devices.size:
            raise ValueError(
                f"DeviceMesh: shape {shape} holds {math.prod(shape)} devices, but "
                f"{devices.size} devices were given ({list(devices.reshape(-1))}). Make the "
                "shape's product equal the number of devices.")
        self._shape, self._axis_names = shape, axis_names
        self._devices = devices.reshape(shape)

    @property
    def shape(self):
        return self._shape

    @property
    def axis_names(self):
        return self._axis_names

    @property
    def devices(self):
        return self._devices

    def __repr__(self):
        return f"<DeviceMesh shape={self._shape}, axis_names={list(self._axis_names)}>"


class TensorLayout:
    """How a tensor maps onto a `DeviceMesh`: one mesh axis name (or None) per dimension.

    Args:
        axes: a tuple of mesh axis names or None, one per tensor dimension.
        device_mesh: the mesh (a `LayoutMap` fills it in).
    """

    def __init__(self, axes, device_mesh=None):
        self._axes = tuple(axes)
        self._device_mesh = device_mesh
        self._validate_axes()

    @property
    def axes(self):
        return self._axes

    @property
    def device_mesh(self):
        return self._device_mesh

    @device_mesh.setter
    def device_mesh(self, device_mesh):
        if self._device_mesh is not None:
            raise ValueError(f"TensorLayout: the device mesh is already set "
                             f"({self._device_mesh}); it cannot be replaced.")
        self._device_mesh = device_mesh
        self._validate_axes()

    def _validate_axes(self):
        if self._device_mesh is None:
            return
        names = set(self._device_mesh.axis_names)
        bad = [a for a in self._axes if a is not None and a not in names]
        if bad:
            raise ValueError(f"TensorLayout: axes {bad} are not axes of the device mesh "
                             f"{self._device_mesh.axis_names}.")

    @property
    def sharded(self):
        """Whether any dimension is split across a mesh axis."""
        return any(a is not None for a in self._axes)

    def __repr__(self):
        return f"<TensorLayout axes={self._axes}>"


class LayoutMap(collections.abc.MutableMapping):
    """Weight paths (regular expressions) mapped to `TensorLayout`s.

        layout_map = LayoutMap(mesh)
        layout_map["dense.*kernel"] = (None, "model")
        layout_map["dense.*bias"] = ("model",)

    Looking a path up returns the layout of the one key that equals it or fully matches it as a
    regular expression (None when none does; a ValueError when several do).
    """

    def __init__(self, device_mesh):
        if not isinstance(device_mesh, DeviceMesh):
            raise ValueError(f"LayoutMap needs a DeviceMesh; received {device_mesh!r}.")
        self._layout_map = collections.OrderedDict()
        self._device_mesh = device_mesh

    def __getitem__(self, key):
        if key in self._layout_map:
            return self._layout_map[key]
        matches = [p for p in self._layout_map if re.fullmatch(p, key)]
        if len(matches) > 1:
            raise ValueError(f"Path {key!r} matches several LayoutMap keys: {matches}. Make "
                             "each weight path match at most one key.")
        return self._layout_map[matches[0]] if matches else None

    def __setitem__(self, key, layout):
        if key in self._layout_map:
            raise ValueError(f"{key!r} is already in the LayoutMap (with "
                             f"{self._layout_map[key]}); keys must not repeat.")
        if isinstance(layout, (tuple, list)):
            layout = TensorLayout(tuple(layout))
        if not isinstance(layout, TensorLayout):
            raise ValueError(f"LayoutMap values must be TensorLayouts or tuples of axis "
                             f"names; received {layout!r} for {key!r}.")
        if layout.device_mesh is None:
            layout.device_mesh = self._device_mesh
        self._layout_map[key] = layout

    def __delitem__(self, key):
        return self._layout_map.pop(key)

    def __len__(self):
        return len(self._layout_map)

    def __iter__(self):
        return iter(self._layout_map)

    @property
    def device_mesh(self):
        return self._device_mesh


# ---------------------------------------------------------------------- distributions
class Distribution:
    """Base class of `DataParallel` and `ModelParallel`.

    Args:
        device_mesh: the `DeviceMesh`; it must hold one device per process of the run.
        batch_dim_name: the mesh axis the batch is split over.
        auto_shard_dataset: whether `fit`/`evaluate`/`predict` give each process its share of
            the data (True), or each process's data is already its own share (False).
    """

    def __init__(self, device_mesh, batch_dim_name=None, auto_shard_dataset=True):
        runtime.initialize_from_environment()
        self._device_mesh = device_mesh
        self._batch_dim_name = batch_dim_name
        self._auto_shard_dataset = bool(auto_shard_dataset)
        self._num_processes, self._process_id = runtime.world_size(), runtime.rank()
        if device_mesh.devices.size != self._num_processes:
            raise ValueError(
                f"Rank {self._process_id}: {type(self).__name__}'s device mesh has "
                f"{device_mesh.devices.size} devices {device_mesh.shape}, but the run has "
                f"{self._num_processes} process(es). plexus runs one process per device: "
                f"launch with `torchrun --nproc_per_node={device_mesh.devices.size} ...` (or "
                "build the mesh from plexus.distribution.list_devices()).")

    @property
    def num_processes(self):
        return self._num_processes

    @property
    def device_mesh(self):
        return self._device_mesh

    @property
    def batch_dim_name(self):
        return self._batch_dim_name

    @property
    def auto_shard_dataset(self):
        return self._auto_shard_dataset

    @auto_shard_dataset.setter
    def auto_shard_dataset(self, value):
        self._auto_shard_dataset = bool(value)

    @property
    def num_model_replicas(self):
        raise NotImplementedError

    @property
    def data_shard_id(self):
        return self._process_id

    def get_data_layout(self, data_shape):
        axes = [None] * len(data_shape)
        if axes:
            axes[0] = self._batch_dim_name
        return TensorLayout(axes, self._device_mesh)

    def get_variable_layout(self, variable):
        return TensorLayout([None] * len(variable.shape), self._device_mesh)

    def get_tensor_layout(self, path):
        return None

    def scope(self):
        """A context in which this distribution is the current one."""
        return _Scope(self)

    def __repr__(self):
        return f"<{type(self).__name__} device_mesh={self._device_mesh}>"


class _Scope:
    def __init__(self, dist):
        self.dist, self.previous = dist, None

    def __enter__(self):
        self.previous = distribution()
        set_distribution(self.dist)
        return self.dist

    def __exit__(self, *exc):
        set_distribution(self.previous)


class DataParallel(Distribution):
    """Data parallelism: every process holds the whole model, each batch is split across the
    processes, gradients are averaged (as torch's DistributedDataParallel does).

    Args:
        device_mesh: a 1-D `DeviceMesh` (the first axis is used when it has more).
        devices: the devices, instead of a mesh (default: `list_devices()`).
        auto_shard_dataset: see `Distribution`.
    """

    def __init__(self, device_mesh=None, devices=None, auto_shard_dataset=True):
        if device_mesh is not None and devices is not None:
            raise ValueError("DataParallel takes device_mesh or devices, not both.")
        if device_mesh is not None:
            if not isinstance(device_mesh, DeviceMesh):
                raise ValueError(f"DataParallel: device_mesh must be a DeviceMesh; received "
                                 f"{device_mesh!r}.")
            if device_mesh.devices.ndim != 1:
                warnings.warn(f"DataParallel expects a 1-D mesh; the first axis "
                              f"({device_mesh.axis_names[0]!r}) splits the data.", stacklevel=2)
            batch = device_mesh.axis_names[0]
        else:
            found = list_devices() if devices is None else list(devices)
            device_mesh = DeviceMesh((len(found),), (DEFAULT_BATCH_DIM_NAME,), found)
            batch = DEFAULT_BATCH_DIM_NAME
        super().__init__(device_mesh, batch, auto_shard_dataset)

    @property
    def num_model_replicas(self):
        return self._device_mesh.devices.size


class ModelParallel(Distribution):
    """Parameters sharded across the processes (torch FSDP2), data split across them.

    Every layer with a weight that the `LayoutMap` gives a sharded layout (any axis not None)
    is wrapped with `torch.distributed.fsdp.fully_shard`: its parameters, their gradients and
    the optimizer's slots are split along their first dimension over all processes, gathered
    for each forward and backward pass. Other weights are replicated, their gradients
    averaged. FSDP decides the split itself (dimension 0, evenly): the layout's axes say
    *which* weights to shard, not along which dimension. Saving gathers the shards into an
    ordinary file that a single process loads.

    Args:
        layout_map: a `LayoutMap` whose device mesh holds one device per process.
        batch_dim_name: the mesh axis the batch is split over (default: the first).
        auto_shard_dataset: see `Distribution`.
    """

    def __init__(self, *, layout_map=None, batch_dim_name=None, auto_shard_dataset=True,
                 **kwargs):
        kwargs.pop("device_mesh", None)
        if kwargs:
            raise TypeError(f"ModelParallel: unexpected argument(s) {', '.join(kwargs)}.")
        if layout_map is None:
            raise ValueError("ModelParallel needs layout_map=LayoutMap(mesh).")
        if not isinstance(layout_map, LayoutMap):
            raise ValueError(f"ModelParallel: layout_map must be a LayoutMap; received "
                             f"{layout_map!r}.")
        mesh = layout_map.device_mesh
        batch_dim_name = batch_dim_name or mesh.axis_names[0]
        if batch_dim_name not in mesh.axis_names:
            raise ValueError(f"ModelParallel: batch_dim_name {batch_dim_name!r} is not an axis "
                             f"of the mesh {mesh.axis_names}.")
        super().__init__(mesh, batch_dim_name, auto_shard_dataset)
        self._layout_map = layout_map

    @property
    def layout_map(self):
        return self._layout_map

    @property
    def num_model_replicas(self):
        return self._device_mesh.shape[self._device_mesh.axis_names.index(self._batch_dim_name)]

    def get_variable_layout(self, variable):
        layout = self._layout_map[getattr(variable, "path", "")]
        return layout if layout is not None else super().get_variable_layout(variable)

    def get_tensor_layout(self, path):
        return self._layout_map[path]


def distribute_tensor(tensor, layout):
    """`tensor` unchanged: each process holds its own values (torch's SPMD model); layouts
    take effect through the model's weights under `ModelParallel`."""
    return tensor


def distribution():
    """The current distribution (None when there is none)."""
    return runtime.current()


def set_distribution(value):
    """Make `value` (a `DataParallel`, a `ModelParallel`, or None) the current distribution.

    Call it before building the model: `fit` refuses a model built before it (its weights
    were made for another setting)."""
    if value is not None and not isinstance(value, Distribution):
        raise ValueError(f"set_distribution expects a DataParallel, a ModelParallel or None; "
                         f"received {value!r}.")
    runtime.set_current(value)
