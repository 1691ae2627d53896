"""How array data becomes batches (plexus/training/data.py)."""
import pytest
import torch

from plexus.training import data as D


@pytest.mark.parametrize("chunk_bytes", [1, 200, 1 << 22])
def test_shuffled_batches_cover_every_sample_once_with_rows_aligned(chunk_bytes, monkeypatch):
    monkeypatch.setattr(D, "SHUFFLE_CHUNK_BYTES", chunk_bytes)  # one, a few, all batches a chunk
    n = 23
    x = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3)
    y = torch.arange(n)[:, None] * 10
    sw = torch.arange(n, dtype=torch.float32) / 2
    data = D.ArrayData([x], [y], sw, batch_size=5, shuffle=True)
    seen, sizes = [], []
    for xs, ys, w in data.batches():
        ids = xs[0][:, 0].long()
        assert torch.equal(xs[0], ids[:, None].float().repeat(1, 3))
        assert torch.equal(ys[0][:, 0], ids * 10) and torch.equal(w, ids.float() / 2)
        seen += ids.tolist()
        sizes.append(len(ids))
    assert sorted(seen) == list(range(n)) and sizes == [5, 5, 5, 5, 3]
    assert seen != list(range(n))  # shuffled (23! orders: a fixed seed does not give this one)
