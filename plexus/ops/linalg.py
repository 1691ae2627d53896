"""Linear algebra ops (`keras.ops.linalg`) on `torch.linalg`."""
import torch

from plexus.ops.common import float_tensor, narrow_float, pair, t
from plexus.ops.table import op


def _square(x, what):
    x = float_tensor(x)
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{what}: expected square matrices (..., n, n); got shape "
                         f"{tuple(x.shape)}.")
    return x


@op("linalg", "Cholesky")
def cholesky(x, upper=False):
    """Cholesky factor of symmetric positive-definite matrices (lower, or `upper`)."""
    return torch.linalg.cholesky(_square(x, "cholesky"), upper=upper)


@op("linalg", "CholeskyInverse")
def cholesky_inverse(x, upper=False):
    """Inverse of a matrix from its Cholesky factor `x`."""
    return torch.cholesky_inverse(_square(x, "cholesky_inverse"), upper=upper)


@op("linalg", "Det")
def det(x):
    """Determinant of square matrices."""
    return torch.linalg.det(_square(x, "det"))


@op("linalg", "Eig")
def eig(x):
    """Eigenvalues and eigenvectors of square matrices (complex in general)."""
    return torch.linalg.eig(_square(x, "eig"))


@op("linalg", "Eigh")
def eigh(x):
    """Eigenvalues (ascending) and eigenvectors of symmetric (Hermitian) matrices."""
    return torch.linalg.eigh(_square(x, "eigh"))


@op("linalg", "Inv")
def inv(x):
    """Inverse of square matrices."""
    return torch.linalg.inv(_square(x, "inv"))


@op("linalg", "LuFactor")
def lu_factor(x):
    """LU factorization with partial pivoting: `(lu, pivots)` (pivots 0-based, int32)."""
    lu, pivots = torch.linalg.lu_factor(float_tensor(x))
    return lu, (pivots - 1).to(torch.int32)


@op("linalg", "Norm")
def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002 (Keras's argument name)
    """Vector norm (an int `axis`, or 1-D input) or matrix norm (a pair of axes, or 2-D
    input); `ord` as NumPy's."""
    x = narrow_float(x)
    if axis is None:
        axis = tuple(range(x.ndim))
        if ord is None:
            return torch.linalg.vector_norm(x, 2, dim=axis, keepdim=keepdims)
    if isinstance(axis, int):
        axis = (axis,)
    axis = tuple(axis)
    if len(axis) == 1:
        return torch.linalg.vector_norm(x, 2 if ord is None else ord, dim=axis, keepdim=keepdims)
    if len(axis) == 2:
        return torch.linalg.matrix_norm(x, "fro" if ord is None else ord, dim=axis,
                                        keepdim=keepdims)
    raise ValueError(f"norm: axis must be an int or a pair of ints; got {axis}.")


@op("linalg", "Qr")
def qr(x, mode="reduced"):
    """QR decomposition: `(q, r)`; `mode` "reduced" or "complete"."""
    if mode not in ("reduced", "complete"):
        raise ValueError(f"qr: mode must be 'reduced' or 'complete'; got {mode!r}.")
    return torch.linalg.qr(float_tensor(x), mode=mode)


@op("linalg", "Solve", "a,b")
def solve(a, b):
    """`x` with `a @ x = b` for square `a`."""
    a, b = pair(a, b)
    a, b = float_tensor(a), float_tensor(b)
    return torch.linalg.solve(a, b.to(a.dtype))


@op("linalg", "SolveTriangular", "a,b")
def solve_triangular(a, b, lower=False):
    """`x` with `a @ x = b` for triangular `a` (upper unless `lower`)."""
    a, b = pair(a, b)
    a, b = float_tensor(a), float_tensor(b)
    vector = b.ndim == a.ndim - 1
    bb = b.unsqueeze(-1) if vector else b
    out = torch.linalg.solve_triangular(a, bb.to(a.dtype), upper=not lower)
    return out.squeeze(-1) if vector else out


@op("linalg", "SVD")
def svd(x, full_matrices=True, compute_uv=True):
    """Singular value decomposition: `(u, s, vh)`, or only `s` without `compute_uv`."""
    x = float_tensor(x)
    if not compute_uv:
        return torch.linalg.svdvals(x)
    return torch.linalg.svd(x, full_matrices=full_matrices)


@op("linalg", "Lstsq", "a,b")
def lstsq(a, b, rcond=None):
    """Least-squares solution `x` of `a @ x = b`."""
    a, b = pair(a, b)
    a, b = float_tensor(a), float_tensor(b)
    vector = b.ndim == 1
    bb = b[:, None] if vector else b
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    cut = (torch.finfo(a.dtype).eps * max(a.shape[-2:]) if rcond is None else rcond) * s.max()
    inv_s = torch.where(s > cut, 1.0 / torch.where(s > cut, s, torch.ones_like(s)),
                        torch.zeros_like(s))
    out = vh.transpose(-1, -2) @ (inv_s[:, None] * (u.transpose(-1, -2) @ bb.to(a.dtype)))
    return out[:, 0] if vector else out


@op("linalg", "MatrixRank")
def matrix_rank(x, tol=None):
    """Rank of matrices (singular values above `tol`)."""
    return torch.linalg.matrix_rank(float_tensor(x), atol=tol).to(torch.int32) \
        if tol is not None else torch.linalg.matrix_rank(float_tensor(x)).to(torch.int32)


@op("linalg", "Pinv")
def pinv(x, rcond=None):
    """Moore-Penrose pseudo-inverse."""
    x = float_tensor(x)
    return torch.linalg.pinv(x) if rcond is None else torch.linalg.pinv(x, rtol=rcond)


@op("numpy", "Slogdet")
def slogdet(x):
    """`(sign, log|det|)` of square matrices."""
    return tuple(torch.linalg.slogdet(_square(x, "slogdet")))


@op("linalg", "JVP", "fun,primals,tangents")
def jvp(fun, primals, tangents, has_aux=False):
    """Jacobian-vector product of `fun` at `primals` along `tangents`: `(outputs, jvp)`, plus
    `aux` with `has_aux` (`fun` then returns `(outputs, aux)`)."""
    out = torch.func.jvp(fun, tuple(primals), tuple(tangents), has_aux=has_aux)
    return out


_ = t
