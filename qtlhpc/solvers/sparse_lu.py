"""Sparse LU of a square non-symmetric matrix: the interface, and its scipy (SuperLU) implementation.

A :class:`SparseLU` backend factors a matrix into an :class:`LUFactorization`, which solves, gives
``log|det|`` with its sign, and refactors a matrix of the same sparsity pattern reusing what it can.
"""

from __future__ import annotations

from typing import Protocol, Tuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from qtlhpc.errors import QtlhpcError


class LogDetUnsupportedError(QtlhpcError, NotImplementedError):
    """The LU solver in use cannot give the determinant (solves still work)."""


class LUFactorization(Protocol):
    """The LU factors of one ``(n, n)`` matrix."""

    n: int

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``A^-1 rhs`` for ``rhs`` of shape ``(n,)`` or ``(n, n_rhs)``; same shape as ``rhs``."""

    def logabsdet(self) -> Tuple[float, float]:
        """``(sign, log|det A|)`` as :func:`numpy.linalg.slogdet` gives them."""

    def refactor(self, matrix) -> None:
        """Factor new values with the same sparsity pattern, reusing the symbolic factorisation."""

    def destroy(self) -> None:
        """Free the factors; the object cannot be used afterwards."""

    def __enter__(self) -> "LUFactorization": ...

    def __exit__(self, *exc) -> None: ...


class SparseLU(Protocol):
    """A sparse LU backend: ``factor(A)`` for a square matrix ``A`` (scipy.sparse, CSR preferred)."""

    name: str

    def factor(self, matrix) -> LUFactorization: ...


def as_square_csr(matrix, what: str = "matrix") -> sp.csr_matrix:
    """``matrix`` as float64 CSR with sorted indices and no duplicates; raise ValueError unless square."""
    csr = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    if csr.shape[0] != csr.shape[1] or csr.shape[0] == 0:
        raise ValueError(f"the {what} must be square and non-empty, got shape {csr.shape}")
    csr.sum_duplicates()
    csr.sort_indices()
    return csr


def check_same_pattern(old: sp.csr_matrix, new: sp.csr_matrix) -> None:
    """Raise ValueError unless ``new`` has the shape and stored-entry pattern of ``old`` (both canonical CSR)."""
    if new.shape != old.shape:
        raise ValueError(f"refactor needs a matrix of the factored shape {old.shape}, got {new.shape}")
    if not (np.array_equal(new.indptr, old.indptr) and np.array_equal(new.indices, old.indices)):
        raise ValueError(
            f"refactor needs the sparsity pattern of the factored matrix ({old.nnz} stored entries; "
            f"got {new.nnz}, or the same count in other places): call factor() for a new pattern"
        )


def as_rhs(rhs, n: int) -> np.ndarray:
    """``rhs`` as a float64 array of shape ``(n,)`` or ``(n, n_rhs)``; raise ValueError otherwise."""
    array = np.asarray(rhs, dtype=np.float64)
    if array.ndim not in (1, 2) or array.shape[0] != n:
        raise ValueError(f"the right-hand side must have shape ({n},) or ({n}, n_rhs), got {array.shape}")
    return array


def permutation_sign(permutation: np.ndarray) -> float:
    """``+1.0`` for an even permutation of ``0..n-1``, ``-1.0`` for an odd one (by cycle count)."""
    seen = np.zeros(permutation.size, dtype=bool)
    transpositions = 0
    for start in range(permutation.size):
        length = 0
        position = start
        while not seen[position]:
            seen[position] = True
            position = permutation[position]
            length += 1
        transpositions += max(length - 1, 0)
    return -1.0 if transpositions % 2 else 1.0


def _splu(matrix: sp.csc_matrix, permc_spec: str):
    try:
        return spla.splu(matrix, permc_spec=permc_spec)
    except RuntimeError as error:
        raise np.linalg.LinAlgError(f"SuperLU failed on the {matrix.shape[0]} x {matrix.shape[0]} matrix "
                                    f"({error}): it is singular") from error


class ScipyLUFactorization:
    """SuperLU factors from :func:`scipy.sparse.linalg.splu` of ``A[:, order]``: ``Pr A[:, order] Pc = L U``.

    ``order`` is the identity at first; :meth:`refactor` sets it to the column ordering SuperLU chose
    before, so a new matrix of the same pattern skips the ordering (scipy's SuperLU has no separate
    numeric phase to reuse).
    """

    def __init__(self, matrix, permc_spec: str = "COLAMD"):
        self._matrix = as_square_csr(matrix)
        self.n = self._matrix.shape[0]
        self._order = np.arange(self.n)
        self._lu = _splu(self._matrix.tocsc(), permc_spec)

    def _factors(self):
        if self._lu is None:
            raise ValueError("this LU factorisation was destroyed")
        return self._lu

    def refactor(self, matrix) -> None:
        new = as_square_csr(matrix)
        check_same_pattern(self._matrix, new)
        order = self._order[np.argsort(self._factors().perm_c)]
        self._lu = _splu(new.tocsc()[:, order], "NATURAL")
        self._order = order
        self._matrix = new

    def solve(self, rhs) -> np.ndarray:
        rhs = as_rhs(rhs, self.n)
        permuted = self._factors().solve(rhs)
        solution = np.empty_like(permuted)
        solution[self._order] = permuted
        return solution

    def logabsdet(self) -> Tuple[float, float]:
        lu = self._factors()
        diagonal = lu.U.diagonal()
        if np.any(diagonal == 0):
            return 0.0, -np.inf
        sign = (np.prod(np.sign(diagonal)) * permutation_sign(lu.perm_r) * permutation_sign(lu.perm_c)
                * permutation_sign(self._order))
        return float(sign), float(np.sum(np.log(np.abs(diagonal))))

    def destroy(self) -> None:
        self._lu = None

    def __enter__(self) -> "ScipyLUFactorization":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()


class ScipySparseLU:
    """Serial sparse LU with SuperLU through scipy; on several ranks each rank factors its own copy."""

    name = "scipy"

    def __init__(self, permc_spec: str = "COLAMD"):
        self.permc_spec = permc_spec

    def factor(self, matrix) -> ScipyLUFactorization:
        """Factor the ``(n, n)`` matrix (scipy.sparse or dense)."""
        return ScipyLUFactorization(matrix, permc_spec=self.permc_spec)

    def __repr__(self) -> str:
        return f"ScipySparseLU(permc_spec={self.permc_spec!r})"
