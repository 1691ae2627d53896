"""The progress display: a bar redrawn in place on a terminal or in a notebook, one line per
epoch in log files (output that is not a terminal) or with `verbose=2`."""
import logging
import os
import sys
import time

from plexus import config


class LogStream:
    """A write-only stream that sends whole lines to the `plexus` logger (INFO): where output
    goes after `plexus.config.disable_interactive_logging()`."""

    def __init__(self):
        self.pending = ""

    def write(self, text):
        self.pending += text.replace("\r", "\n").replace("\b", "")
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.strip():
                logging.getLogger("plexus").info(line)

    def flush(self):
        pass

    def isatty(self):
        return False


def print_msg(message):
    """Print a line to stdout, or log it when interactive logging is disabled."""
    from plexus import config
    if config.is_interactive_logging_enabled():
        print(message, flush=True)
    else:
        logging.getLogger("plexus").info(message)


def interactive():
    """Whether the output can be redrawn in place: a terminal, or a Jupyter/IPython kernel."""
    out = sys.stdout
    try:
        if hasattr(out, "isatty") and out.isatty():
            return True
    except ValueError:  # closed stream
        return False
    return "ipykernel" in sys.modules or "PYCHARM_HOSTED" in os.environ


def format_value(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{v:.4f}" if abs(v) > 1e-3 or v == 0 else f"{v:.4e}"


def format_time(seconds, per_unit, unit):
    if per_unit >= 1 or per_unit == 0:
        rate = f"{per_unit:.0f}s/{unit}"
    elif per_unit >= 1e-3:
        rate = f"{per_unit * 1e3:.0f}ms/{unit}"
    else:
        rate = f"{per_unit * 1e6:.0f}us/{unit}"
    return f"{seconds:.0f}s", rate


class Progbar:
    """A progress bar: `update(current, values)` with `values` a mapping of metric values.

    Args:
        target: total number of steps, or None when unknown.
        verbose: 1 draws the bar (in place when interactive, else once when finished); 2 prints
            one summary line when finished.
        interval: minimum seconds between two redraws (reading metric values waits for the
            device, so redraws are rationed).
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, unit_name="step",
                 stream=None):
        self.target, self.width, self.verbose = target, width, verbose
        self.interval, self.unit = interval, unit_name
        if stream is None and not config.is_interactive_logging_enabled():
            stream = LogStream()
        self.stream = stream or sys.stdout
        self.dynamic = interactive() if stream is None else (
            hasattr(stream, "isatty") and stream.isatty())
        self.start = time.time()
        self.last_draw = 0.0
        self.seen = 0
        self.prev_len = 0

    def due(self, current, finalize=False):
        """Whether `update(current, ...)` would draw anything (so values need reading)."""
        if finalize or (self.target is not None and current >= self.target):
            return True
        return self.verbose == 1 and self.dynamic and \
            time.time() - self.last_draw >= self.interval

    def update(self, current, values=None, finalize=None):
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self.seen = current
        if not self.due(current, finalize):
            return
        now = time.time()
        self.last_draw = now
        elapsed = now - self.start
        per_unit = elapsed / current if current else 0.0
        metrics = "".join(f" - {k}: {format_value(v)}" for k, v in (values or {}).items())
        if self.verbose == 2:
            if finalize:
                total, rate = format_time(elapsed, per_unit, self.unit)
                self._write(f"{current}/{self.target or current} - {total} - {rate}{metrics}\n")
            return
        line = self._bar(current)
        if finalize:
            total, rate = format_time(elapsed, per_unit, self.unit)
            line += f" {total} {rate}{metrics}"
        else:
            eta = per_unit * (self.target - current) if self.target else elapsed
            _, rate = format_time(elapsed, per_unit, self.unit)
            line += f" {eta:.0f}s {rate}{metrics}"
        if self.dynamic:
            pad = max(self.prev_len - len(line), 0)
            self._write("\r" + line + " " * pad + ("\n" if finalize else ""))
            self.prev_len = len(line)
        elif finalize:
            self._write(line + "\n")

    def _bar(self, current):
        if not self.target:
            return f"{current}/Unknown"
        digits = len(str(self.target))
        done = int(self.width * min(current, self.target) / self.target)
        rest = self.width - done
        if self.dynamic and rest:
            # Finished part bright, the rest dim, as on a terminal.
            bar = "\u2501" * done + "\x1b[2m" + "\u2501" * rest + "\x1b[0m"
        else:
            bar = "\u2501" * done + "\u2500" * rest
        return f"{current:>{digits}}/{self.target} {bar}"

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (ValueError, OSError):  # a closed or broken stream must not stop training
            pass
