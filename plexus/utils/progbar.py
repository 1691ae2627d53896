"""`Progbar`: Keras's progress bar for your own loops."""
from plexus.training import progbar as _progbar


class Progbar(_progbar.Progbar):
    """A progress bar for custom loops: `update(current, values)` after each step.

    Args:
        target: the total number of steps, or None if unknown.
        width: the bar's width in characters.
        verbose: 1 (a bar), 2 (one line at the end) or 0 (silent).
        interval: the minimum number of seconds between redraws.
        stateful_metrics: names of metrics shown as given; the others are averaged over the
            steps seen so far (as Keras does).
        unit_name: the name of a step (`"step"`, `"sample"`).

    Example:
        >>> bar = Progbar(10)
        >>> for i in range(10):
        ...     bar.update(i + 1, values=[("loss", 0.1)])
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, stateful_metrics=None,
                 unit_name="step"):
        super().__init__(target, width=width, verbose=verbose, interval=interval,
                         unit_name=unit_name)
        self.stateful_metrics = set(stateful_metrics or ())
        self._sums = {}  # name -> [weighted sum, steps]
        self._current = 0

    def update(self, current, values=None, finalize=None):
        """Move the bar to `current` with `values`: a list of `(name, value)` pairs (or a
        dict)."""
        items = values.items() if isinstance(values, dict) else (values or [])
        steps = max(current - self._current, 1)
        for name, value in items:
            if name in self.stateful_metrics:
                self._sums[name] = [value, 1]
            else:
                total = self._sums.setdefault(name, [0.0, 0])
                total[0] += float(value) * steps
                total[1] += steps
        self._current = current
        if self.verbose == 0:
            return
        shown = {k: s / max(n, 1) for k, (s, n) in self._sums.items()}
        super().update(current, shown, finalize)

    def add(self, n, values=None):
        """Advance the bar by `n` steps."""
        self.update(self._current + n, values)
