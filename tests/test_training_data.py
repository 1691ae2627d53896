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


def test_array_batches_are_the_slices_they_stand_for():
    """Flat batches are `narrow` views of the arrays: the same rows as slicing, at the end of
    the data and past it too."""
    import torch
    from plexus.training.data import ArrayData
    a, b = torch.arange(20.).reshape(10, 2), torch.arange(10)
    data = ArrayData([a], [b], None, 4)
    for part in (slice(0, 4), slice(8, 12), slice(10, 14), slice(12, 16), slice(0, None),
                 slice(3, 1), slice(0, 10, 2)):
        got, want = data._take([a, b], part), [a[part], b[part]]
        for g, w in zip(got, want):
            assert torch.equal(g, w) and g.shape == w.shape
    batches = list(ArrayData([a], [b], None, 4).batches())
    assert [len(x[0]) for x, _, _ in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([x[0] for x, _, _ in batches]), a)
