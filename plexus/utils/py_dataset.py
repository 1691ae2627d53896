"""`PyDataset` (alias `Sequence`): a dataset you write as `__len__` and `__getitem__`."""
import collections
import concurrent.futures
import multiprocessing

_WORKER_DATASET = [None]  # the dataset a worker process reads (set when the worker starts)


class PyDataset:
    """Base class for datasets of batches indexed by position, read by `fit`, `evaluate` and
    `predict` (in order, or in worker threads/processes).

    Subclasses define `__len__` (the number of batches) and `__getitem__(index)` returning a
    batch `x`, `(x, y)` or `(x, y, sample_weight)`; `on_epoch_begin`/`on_epoch_end` are
    called around every epoch (shuffle there).

    Args:
        workers: how many batches are prepared at once (threads, or processes with
            `use_multiprocessing`); 1 reads them in the training loop's thread.
        use_multiprocessing: use processes (the dataset must be picklable where processes are
            spawned rather than forked).
        max_queue_size: how many batches may wait ready ahead of the training loop.

    Example:

        class Batches(plexus.utils.PyDataset):
            def __init__(self, x, y, batch_size, **kwargs):
                super().__init__(**kwargs)
                self.x, self.y, self.batch_size = x, y, batch_size

            def __len__(self):
                return math.ceil(len(self.x) / self.batch_size)

            def __getitem__(self, i):
                s = slice(i * self.batch_size, (i + 1) * self.batch_size)
                return self.x[s], self.y[s]
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    @property
    def workers(self):
        return getattr(self, "_workers", 1)

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        return getattr(self, "_use_multiprocessing", False)

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        return getattr(self, "_max_queue_size", 10)

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index).")

    @property
    def num_batches(self):
        """The number of batches (`len(self)`), or None when the class has no `__len__`."""
        try:
            return len(self)
        except (TypeError, NotImplementedError):
            return None

    def on_epoch_begin(self):
        """Called at the start of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""

    def __iter__(self):
        return iter_batches(self, self.num_batches)


Sequence = PyDataset


def _read(index):
    return _WORKER_DATASET[0][index]


def _start_worker(dataset):
    _WORKER_DATASET[0] = dataset


def iter_batches(dataset, steps):
    """`dataset[0]`, `dataset[1]`, ... (`steps` of them), read ahead by the dataset's workers
    (at most `max_queue_size` waiting)."""
    workers = getattr(dataset, "workers", 1) or 1
    if workers <= 1:
        for i in range(steps):
            yield dataset[i]
        return
    ahead = max(1, int(getattr(dataset, "max_queue_size", 10) or 1))
    if getattr(dataset, "use_multiprocessing", False):
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker, initargs=(dataset,))
        submit = lambda i: pool.submit(_read, i)  # noqa: E731
    else:
        pool = concurrent.futures.ThreadPoolExecutor(workers)
        submit = lambda i: pool.submit(dataset.__getitem__, i)  # noqa: E731
    pending = collections.deque()
    try:
        for i in range(steps):
            pending.append(submit(i))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
