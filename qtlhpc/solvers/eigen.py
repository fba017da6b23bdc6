"""The largest eigenpairs of a symmetric matrix: the interface, and its scipy implementation.

Every backend returns eigenvalues in descending order and unit eigenvectors with the sign convention
of :func:`canonical_signs`, so that results compare across backends and rank counts (an eigenvector
of a repeated eigenvalue is not unique, and then only the spanned space compares).
"""

from __future__ import annotations

from typing import Optional, Protocol, Tuple

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from qtlhpc.errors import QtlhpcError


class EigenConvergenceError(QtlhpcError, RuntimeError):
    """The iterative eigensolver stopped before ``k`` eigenpairs converged."""


class Eigensolver(Protocol):
    """A symmetric eigensolver backend."""

    name: str

    def largest(self, matrix, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` largest eigenpairs of the symmetric ``(n, n)`` ``matrix`` (numpy or scipy.sparse).

        Returns ``(eigenvalues (k,) descending, eigenvectors (n, k))``, the same on every rank.
        """


def canonical_signs(eigenvectors: np.ndarray) -> np.ndarray:
    """``eigenvectors`` ``(n, k)`` with each column's largest-magnitude entry (first if tied) made positive."""
    vectors = np.array(eigenvectors, dtype=np.float64, copy=True)
    largest = np.argmax(np.abs(vectors), axis=0)
    flip = vectors[largest, np.arange(vectors.shape[1])] < 0
    vectors[:, flip] *= -1.0
    return vectors


def as_symmetric(matrix, k: int):
    """``matrix`` as float64 (dense ndarray or CSR) after checking it is square, symmetric and ``1 <= k <= n``."""
    if sp.issparse(matrix):
        checked = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
        checked.sum_duplicates()
        checked.sort_indices()
    else:
        checked = np.asarray(matrix, dtype=np.float64)
        if checked.ndim != 2:
            raise ValueError(f"the matrix must be 2-D (n, n), got shape {checked.shape}")
    n_rows, n_cols = checked.shape
    if n_rows != n_cols or n_rows == 0:
        raise ValueError(f"the matrix must be square and non-empty, got shape {checked.shape}")
    if not 1 <= k <= n_rows:
        raise ValueError(f"k must be between 1 and n = {n_rows}, got k = {k}")
    asymmetry = abs(checked - checked.T).max()
    scale = abs(checked).max()
    if asymmetry > 1e-12 * scale:
        raise ValueError(f"the matrix must be symmetric: max |A - A.T| = {asymmetry:.3g} (max |A| = {scale:.3g})")
    return checked


def descending(eigenvalues: np.ndarray, eigenvectors: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest pairs, eigenvalues descending, eigenvectors with :func:`canonical_signs`."""
    order = np.argsort(eigenvalues)[::-1][:k]
    return np.asarray(eigenvalues)[order].copy(), canonical_signs(np.asarray(eigenvectors)[:, order])


class ScipyEigen:
    """Symmetric eigenpairs with scipy: LAPACK ``eigh`` for small matrices, ARPACK ``eigsh`` (Lanczos) else.

    ``dense_below``: matrices with fewer rows than this (or ``k >= n - 1``) go to ``eigh``.  ``tol``: ARPACK's
    relative accuracy (0 for machine precision).  Serial; on several ranks each rank solves its copy.
    """

    name = "scipy"

    def __init__(self, tol: float = 1e-10, dense_below: int = 500, max_iterations: Optional[int] = None):
        self.tol = tol
        self.dense_below = dense_below
        self.max_iterations = max_iterations

    def largest(self, matrix, k: int) -> Tuple[np.ndarray, np.ndarray]:
        matrix = as_symmetric(matrix, k)
        n = matrix.shape[0]
        if n < self.dense_below or k >= n - 1:
            dense = matrix.toarray() if sp.issparse(matrix) else matrix
            values, vectors = scipy.linalg.eigh(dense, subset_by_index=[n - k, n - 1])
            return descending(values, vectors, k)
        start = np.random.default_rng(0).standard_normal(n)
        try:
            values, vectors = spla.eigsh(matrix, k=k, which="LA", tol=self.tol, v0=start,
                                         maxiter=self.max_iterations)
        except spla.ArpackNoConvergence as error:
            raise EigenConvergenceError(
                f"ARPACK found {len(error.eigenvalues)} of {k} eigenpairs: raise max_iterations or tol") from error
        return descending(values, vectors, k)

    def __repr__(self) -> str:
        return f"ScipyEigen(tol={self.tol}, dense_below={self.dense_below})"
