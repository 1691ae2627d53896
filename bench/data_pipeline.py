"""Data-pipeline benchmark: images streamed from disk into a small convnet with augmentation.

    python bench/data_pipeline.py                    # 3,000 JPEGs 64x64, 2 rounds
    python bench/data_pipeline.py --images 2000 --format png --workers 2 --rounds 3

plexus: `image_dataset_from_directory` (Pillow decode and resize per batch, in `--workers`
threads) feeding a functional model that starts with `RandomFlip("horizontal")` and
`RandomRotation(0.1)`, one `fit` epoch. PyTorch: a hand-written `Dataset` (Pillow decode, the
same resize) and `DataLoader` with `--workers` worker processes, the same convnet as an
`nn.Module`, the same two augmentations written in torch (a batched flip and an affine
`grid_sample` rotation with reflection padding), Adam, a plain loop. Both read the same files
in shuffled order, batch 32.

Also times the two augmentation layers alone against the same torch code, on one batch.
Rounds alternate between the contenders; the best is reported. Timings on a shared machine are
noisy: compare ratios, and rerun on a quiet one.
"""
import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import plexus  # noqa: E402

SIZE, BATCH, CLASSES = 64, 32, 2


def write_images(root, n, fmt="jpg", size=SIZE):
    """`n` small images in two class folders (smooth gradients plus noise, like photos)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        c = i % CLASSES
        os.makedirs(os.path.join(root, f"class_{c}"), exist_ok=True)
        base = np.stack([(xx * (2 + c) + i) % 256, (yy * 3 + 40 * c) % 256,
                         (xx + yy + 17 * i) % 256], -1)
        img = (base + rng.integers(0, 30, base.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(root, f"class_{c}", f"{i}.{fmt}"))


# ---------------------------------------------------------------------- plexus
def plexus_model():
    layers = plexus.layers
    inputs = plexus.Input(shape=(SIZE, SIZE, 3))
    x = layers.RandomFlip("horizontal")(inputs)
    x = layers.RandomRotation(0.1)(x)
    x = layers.Rescaling(1.0 / 255)(x)
    for filters in (16, 32):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(CLASSES)(x)
    model = plexus.Model(inputs, outputs)
    model.compile(plexus.optimizers.Adam(1e-3),
                  plexus.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def plexus_epoch(root, workers, state):
    if "ds" not in state:
        ds = plexus.utils.image_dataset_from_directory(
            root, image_size=(SIZE, SIZE), batch_size=BATCH, seed=1, verbose=False)
        state["ds"] = ds.prefetch(workers)
        state["model"] = plexus_model()
    start = time.perf_counter()
    state["model"].fit(state["ds"], epochs=1, verbose=0)
    return time.perf_counter() - start


# ---------------------------------------------------------------------- PyTorch by hand
class Files(torch.utils.data.Dataset):
    def __init__(self, root):
        classes = sorted(os.listdir(root))
        self.items = [(os.path.join(root, c, f), k) for k, c in enumerate(classes)
                      for f in sorted(os.listdir(os.path.join(root, c)))]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        img = torch.from_numpy(np.array(Image.open(path).convert("RGB"), dtype=np.uint8))
        img = img.permute(2, 0, 1).float()
        if img.shape[-2:] != (SIZE, SIZE):
            img = F.interpolate(img[None], size=(SIZE, SIZE), mode="bilinear",
                                align_corners=False)[0]
        return img, label


def torch_augment(images, gen):
    """Random horizontal flips and rotations of up to ±36° (NCHW batch), as the layers do."""
    b = images.shape[0]
    flip = torch.rand(b, generator=gen) <= 0.5
    images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    angle = (torch.rand(b, generator=gen) * 2 - 1) * 0.1 * 2 * math.pi
    cos, sin = torch.cos(angle), torch.sin(angle)
    zeros = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zeros], 1),
                         torch.stack([sin, cos, zeros], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.fc = torch.nn.Linear(32, CLASSES)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x / 255.0)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.fc(x.mean((2, 3)))


def torch_epoch(root, workers, state):
    if "loader" not in state:
        state["loader"] = torch.utils.data.DataLoader(
            Files(root), batch_size=BATCH, shuffle=True, num_workers=workers,
            persistent_workers=workers > 0)
        state["net"] = Net().to(memory_format=torch.channels_last)
        state["opt"] = torch.optim.Adam(state["net"].parameters(), 1e-3)
        state["gen"] = torch.Generator().manual_seed(0)
    net, opt = state["net"], state["opt"]
    start = time.perf_counter()
    total = torch.zeros(())
    for images, labels in state["loader"]:
        images = torch_augment(images, state["gen"]).contiguous(
            memory_format=torch.channels_last)
        loss = F.cross_entropy(net(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.detach()
    float(total)
    return time.perf_counter() - start


# ---------------------------------------------------------------------- augmentation alone
def augmentation_times(repeats=20):
    images = torch.rand(BATCH, SIZE, SIZE, 3) * 255
    flip, rotate = plexus.layers.RandomFlip("horizontal"), plexus.layers.RandomRotation(0.1)
    nchw, gen = images.permute(0, 3, 1, 2).contiguous(), torch.Generator().manual_seed(0)

    def best(fn):
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)
    return (best(lambda: rotate(flip(images, training=True), training=True)),
            best(lambda: torch_augment(nchw, gen)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--format", default="jpg", choices=["jpg", "png"])
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", default=None, help="reuse/keep the image folder here")
    args = parser.parse_args(argv)
    tmp = None if args.dir else tempfile.TemporaryDirectory()
    root = args.dir or tmp.name
    if not (os.path.isdir(root) and os.listdir(root)):
        os.makedirs(root, exist_ok=True)
        write_images(root, args.images, args.format)
    states, times = ({}, {}), ([], [])
    for r in range(args.rounds + 1):  # round 0 warms up (workers start, kernels load)
        order = (0, 1) if r % 2 else (1, 0)
        for k in order:
            t = (plexus_epoch, torch_epoch)[k](root, args.workers, states[k])
            if r:
                times[k].append(t)
    p, t = min(times[0]), min(times[1])
    aug_p, aug_t = augmentation_times()
    print(f"{args.images} {args.format.upper()} images {SIZE}x{SIZE}, batch {BATCH}, "
          f"{args.workers} workers, torch threads {torch.get_num_threads()}")
    print("| pipeline | one fit epoch (s, best) |\n|---|---|")
    print(f"| plexus image_dataset_from_directory + layers | {p:.3f} |")
    print(f"| PyTorch Dataset + DataLoader by hand | {t:.3f} |")
    print(f"plexus / PyTorch: {p / t:.2f}x")
    print(f"RandomFlip + RandomRotation on one batch: plexus {aug_p * 1e3:.2f} ms, "
          f"the same torch code {aug_t * 1e3:.2f} ms ({aug_p / aug_t:.2f}x)")
    if tmp is not None:
        tmp.cleanup()
    return {"plexus_s": p, "torch_s": t, "aug_plexus_s": aug_p, "aug_torch_s": aug_t}


if __name__ == "__main__":
    main()
