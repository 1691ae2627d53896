"""Saves that fail or are killed: the previous file stays whole, temporary files do not pile
up, permissions and symbolic links survive, training resumes from the last checkpoint."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import plexus
from plexus import layers as L
from plexus.saving import files


def _model():
    inp = plexus.Input((3,), name="inp")
    return plexus.Model(inp, L.Dense(2, name="out")(L.Dense(4, name="hidden")(inp)), name="m")


def _temps(folder):
    return sorted(n for n in os.listdir(folder) if ".plexus-tmp-" in n)


@pytest.mark.parametrize("name", ["m.keras", "m.weights.h5", "m.h5"])
def test_save_keeps_the_mode_of_the_file_it_replaces(tmp_path, name):
    path = tmp_path / name
    save = (lambda p: _model().save(p)) if name != "m.weights.h5" else \
        (lambda p: _model().save_weights(p))
    save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # a new file: as open() makes it
    for mode in (0o640, 0o604):
        os.chmod(path, mode)
        save(path)
        assert path.stat().st_mode & 0o777 == mode
    assert _temps(tmp_path) == []


def test_save_writes_through_a_symbolic_link(tmp_path):
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "real.keras"
    _model().save(target)
    link = tmp_path / "latest.keras"
    link.symlink_to(os.path.join("store", "real.keras"))
    model = _model()
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == os.path.join("store", "real.keras")
    loaded = plexus.models.load_model(target)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert _temps(tmp_path) == [] and _temps(tmp_path / "store") == []


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_provably_stale_temp_files_of_the_same_path_are_swept(tmp_path):
    host = files._host()
    dead = _dead_pid()

    def temp(base, host, pid, content=b"PK\x03\x04", token="0123abcd"):
        path = tmp_path / f".{base}.plexus-tmp-{host}-{pid}-{token}.tmp"
        path.write_bytes(content)
        return path.name

    stale = [temp("m.keras", host, dead), temp("m.keras", host, dead, b"", "0123abce"),
             temp("m.keras", host, dead, b"\x89HDF\r\n\x1a\n", "0123abcf")]
    kept = [temp("m.keras", host, os.getpid()),  # a save in progress (this process)
            temp("m.keras", "another-host", dead),  # a shared folder: not ours to judge
            temp("other.keras", host, dead),  # another path's
            temp("m.keras", host, dead, b"somebody's notes", "0123abc1"),  # not plexus's bytes
            ".m.keras.0123abcd.tmp"]  # no plexus tag
    (tmp_path / kept[-1]).write_bytes(b"PK")
    (tmp_path / f".m.keras.plexus-tmp-{host}-{dead}-0123abc0.tmp").symlink_to(tmp_path / kept[0])
    kept.append(f".m.keras.plexus-tmp-{host}-{dead}-0123abc0.tmp")
    _model().save(tmp_path / "m.keras")
    left = set(os.listdir(tmp_path))
    assert not left & set(stale)
    assert set(kept) <= left


def test_a_failed_save_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "m.keras"
    model = _model()
    model.save(path)
    before = path.read_bytes()

    def broken(model, f):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(plexus.saving.optimizer_state, "write", broken)
    with pytest.raises(OSError, match="No space"):
        _model().save(path)
    assert path.read_bytes() == before and _temps(tmp_path) == []


# A child process (plexus imported once) forks the processes that get killed: a save loop,
# a fit with ModelCheckpoint after every batch, saves under a file-size limit.
_FAULTS = r'''
import json, os, random, resource, signal, sys, time
import numpy as np
import plexus
from plexus import layers as L
from plexus.saving import files

tmp = sys.argv[1]
random.seed(0)


def report(**kw):
    print(json.dumps(kw), flush=True)


def temps():
    return sorted(n for n in os.listdir(tmp) if ".plexus-tmp-" in n)


def model(seed=0):
    import torch
    torch.manual_seed(seed)
    inp = plexus.Input((64,))
    x = L.Dense(256, activation="relu")(inp)
    x = L.Dense(256, activation="relu")(x)
    return plexus.Model(inp, L.Dense(4)(x))


def set_marker(m, value):
    import torch
    with torch.no_grad():
        m.layers[-1].bias[0] = value


def in_child(fn):
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        finally:
            os._exit(0)
    return pid


# --- kill -9 during saves: at random moments, and once for sure while the temporary exists
m = model()
path = os.path.join(tmp, "m.keras")
set_marker(m, 0.0)
m.save(path)
reference = [w.copy() for w in m.get_weights()]


def save_forever(k):
    i = 1
    while True:
        set_marker(m, 1000.0 * k + i)
        m.save(path)
        i += 1


def hold_inside_a_save(k, w):
    """Save, but stop for good once the temporary file exists (and say so through `w`)."""
    real = files.atomic_path

    def held(filepath):
        saving = real(filepath)
        saving.__enter__()  # the temporary file is created ...
        os.write(w, b"x")
        time.sleep(3600)  # ... and the process is killed here
    files.atomic_path = held
    set_marker(m, 1000.0 * k)
    m.save(path)


for k in range(1, 5):
    if k == 4:
        r, w = os.pipe()
        pid = in_child(lambda: hold_inside_a_save(k, w))
        os.read(r, 1)
    else:
        pid = in_child(lambda: save_forever(k))
        time.sleep(random.uniform(0.2, 0.6))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    loaded = plexus.models.load_model(path)
    weights = loaded.get_weights()
    marker = float(weights[-1][0])
    same = all(np.array_equal(a, b) for a, b in zip(weights[:-1], reference[:-1]))
    report(kill=k, marker=marker, intact=same, temps=len(temps()))
set_marker(m, 1.0)
m.save(path)
report(after_next_save=temps())

# --- disk full: a file-size limit below the model's size
size = os.path.getsize(path)


def limited_save(ignore):
    # Python ignores SIGXFSZ (writes then fail with EFBIG); by default it kills the process
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN if ignore else signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))
    set_marker(m, 99.0)
    try:
        m.save(path)
    except OSError as e:
        report(disk_full_error=f"{type(e).__name__}: {e}")
        os._exit(3)


for ignore in (True, False):
    pid = in_child(lambda: limited_save(ignore))
    _, status = os.waitpid(pid, 0)
    loaded = plexus.models.load_model(path)
    report(disk_full=ignore, status=status, marker=float(loaded.get_weights()[-1][0]),
           temps=len(temps()))
m.save(path)
report(after_disk_full=temps())

# --- kill -9 during fit with a checkpoint after every batch; resume from the checkpoint
x = np.random.default_rng(0).normal(size=(16, 64)).astype("float32")
y = np.random.default_rng(1).normal(size=(16, 4)).astype("float32")
ckpt = os.path.join(tmp, "ckpt.keras")


def train_forever():
    t = model(1)
    t.compile("adam", "mse")
    t.fit(x, y, batch_size=16, epochs=100000, shuffle=False, verbose=0,
          callbacks=[plexus.callbacks.ModelCheckpoint(ckpt, save_freq=1)])


pid = in_child(train_forever)
while not os.path.exists(ckpt):
    time.sleep(0.05)
time.sleep(random.uniform(0.3, 0.8))
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
resumed = plexus.models.load_model(ckpt)
steps = int(resumed.optimizer.iterations)
straight = model(1)
straight.compile("adam", "mse")
straight.fit(x, y, batch_size=16, epochs=steps, shuffle=False, verbose=0)
equal_at_kill = all(np.array_equal(a, b) for a, b in
                    zip(straight.get_weights(), resumed.get_weights()))
straight.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
resumed.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
equal_after = all(np.array_equal(a, b) for a, b in
                  zip(straight.get_weights(), resumed.get_weights()))
resumed.save(ckpt)
report(checkpoint_steps=steps, equal_at_kill=equal_at_kill, equal_after_resume=equal_after,
       temps=temps())
'''


def test_kills_and_full_disks_during_saves_and_checkpoints(tmp_path):
    script = tmp_path / "faults.py"
    script.write_text(_FAULTS)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    kills = [r for r in lines if "kill" in r]
    assert len(kills) == 4 and all(r["intact"] for r in kills), kills
    # every kill left a loadable file holding one complete save (markers only grow)
    assert all(a["marker"] <= b["marker"] for a, b in zip(kills, kills[1:])), kills
    assert kills[-1]["temps"] >= 1  # the kill inside a save left its temporary file ...
    assert next(r for r in lines if "after_next_save" in r)["after_next_save"] == []  # ... swept
    full = [r for r in lines if "disk_full" in r]
    assert any("disk_full_error" in r for r in lines)
    assert full[0]["status"] >> 8 == 3 and full[0]["temps"] == 0  # OSError, cleaned up
    assert os.WIFSIGNALED(full[1]["status"]) and full[1]["temps"] >= 1  # SIGXFSZ: one left
    assert all(r["marker"] == 1.0 for r in full)  # ... and the saved file untouched
    assert next(r for r in lines if "after_disk_full" in r)["after_disk_full"] == []
    resume = next(r for r in lines if "checkpoint_steps" in r)
    assert resume["checkpoint_steps"] >= 1
    assert resume["equal_at_kill"] and resume["equal_after_resume"], resume
    assert resume["temps"] == [], resume
    assert socket.gethostname()  # (temporary names carry the host: sweeps stay local)
