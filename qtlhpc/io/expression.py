"""Expression data: :class:`ExpressionSet`, gene-major, held apart from the :class:`~qtlhpc.io.cross.Cross`.

``values (n_genes, n_samples)`` float64 with NaN for a missing value; one row per gene (or any molecular
phenotype: transcript, exon, protein), one column per sample.  Each gene has a chromosome, an interval
``starts``..``ends`` and a strand.

Coordinates are **1-based and closed** (as VCF positions, GTF and FastQTL/QTLtools internally): a BED
row ``chr  s  e`` (0-based, half open) becomes ``start = s + 1``, ``end = e``.  The gene's transcription
start site :attr:`ExpressionSet.tss` is ``start`` on the ``+`` strand (and for ``.``) and ``end`` on the
``-`` strand, as QTLtools does.  For the one-base intervals of FastQTL, QTLtools and tensorQTL inputs
(``e = s + 1``) start and end are the same base, so the TSS is ``s + 1 = e`` whatever the strand: the
position FastQTL measures its cis distances from (``POS - (s + 1)``) and the BED ``end`` that tensorQTL
takes as its ``tss`` (its later versions keep ``s + 1`` and ``e`` as here).  FastQTL ignores the strand
and always uses ``s + 1``; the two differ only for longer intervals on the ``-`` strand.

Not pickled whole: a set of 20-50k genes by 1,000 samples is 0.2-0.4 GB, and the cross is pickled and
broadcast to every rank.  An input stage writes ``values`` once to the results file and ranks read their
:meth:`ExpressionSet.gene_block`.  Pickling a set larger than :data:`PICKLE_LIMIT_BYTES` raises
``TypeError`` so that a broadcast of the whole matrix fails loudly instead of filling memory.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional, Sequence

import numpy as np

from qtlhpc.errors import InputError, did_you_mean
from qtlhpc.io.tables import show_few

#: allowed strand codes ('.' = unknown or unstranded, treated as '+')
STRANDS = ("+", "-", ".")
#: the largest ``values`` (bytes) an ExpressionSet may be pickled with; larger sets go through the results file
PICKLE_LIMIT_BYTES = 32 * 2**20


@dataclass(frozen=True, eq=False)
class ExpressionSet:
    """Expression values of genes by samples, with each gene's position.

    Shapes: ``values (n_genes, n_samples)`` float64, NaN missing (never infinite); ``gene_ids``,
    ``chromosomes``, ``starts``, ``ends``, ``strands`` and the optional ``group_ids`` ``(n_genes,)``;
    ``sample_ids (n_samples,)``.  ``starts``/``ends`` are int64, 1-based closed (see the module docstring),
    ``strands`` one of ``+ - .``.  ``group_ids`` is QTLtools's ``gid`` column (the gene an exon or a
    transcript belongs to), ``None`` when the input has none.  ``source`` names the file for messages.

    The arrays are not copied; treat them as read-only.  Gene and sample IDs are unique.
    """

    values: np.ndarray
    gene_ids: np.ndarray
    chromosomes: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    strands: np.ndarray
    sample_ids: np.ndarray
    group_ids: Optional[np.ndarray] = None
    source: str = ""

    def __post_init__(self):
        coerce = object.__setattr__
        coerce(self, "values", np.asarray(self.values, dtype=np.float64))
        for name in ("gene_ids", "chromosomes", "strands", "sample_ids"):
            coerce(self, name, np.asarray(getattr(self, name), dtype=str).reshape(-1))
        if self.group_ids is not None:
            coerce(self, "group_ids", np.asarray(self.group_ids, dtype=str).reshape(-1))
        for name in ("starts", "ends"):
            coerce(self, name, _integer_positions(getattr(self, name), name, self.source))
        coerce(self, "source", str(self.source))
        self._check_shapes()
        self._check_ids()
        self._check_positions()
        self._check_values()

    # ------------------------------------------------------------------ validation
    def _fail(self, message: str, hint: str) -> None:
        raise InputError(message, file=self.source or None, hint=hint)

    def _check_shapes(self) -> None:
        if self.values.ndim != 2:
            self._fail(f"values must be a (n_genes, n_samples) matrix; got {self.values.ndim} dimensions "
                       f"of shape {self.values.shape}", "pass a 2-D array, genes in rows")
        n_genes, n_samples = self.values.shape
        per_gene = ["gene_ids", "chromosomes", "starts", "ends", "strands"]
        if self.group_ids is not None:
            per_gene.append("group_ids")
        for name in per_gene:
            if len(getattr(self, name)) != n_genes:
                self._fail(f"{name} has {len(getattr(self, name))} entries but values has {n_genes} genes "
                           f"(rows); values shape is {self.values.shape}",
                           "values is (n_genes, n_samples): transpose it if samples are in rows")
        if len(self.sample_ids) != n_samples:
            self._fail(f"sample_ids has {len(self.sample_ids)} entries but values has {n_samples} samples "
                       f"(columns); values shape is {self.values.shape}",
                       "values is (n_genes, n_samples): transpose it if samples are in rows")

    def _check_ids(self) -> None:
        for name, what in (("gene_ids", "gene ID"), ("sample_ids", "sample ID")):
            ids = getattr(self, name)
            blank = np.flatnonzero(ids == "")
            if len(blank):
                self._fail(f"{what} number {int(blank[0]) + 1} is empty", f"every {what} needs a name")
            unique, counts = np.unique(ids, return_counts=True)
            if len(unique) != len(ids):
                repeated = unique[counts > 1]
                self._fail(f"duplicated {what}s: {show_few(repeated)}", f"every {what} must be unique")

    def _check_positions(self) -> None:
        bad_strand = ~np.isin(self.strands, STRANDS)
        if bad_strand.any():
            k = int(np.flatnonzero(bad_strand)[0])
            self._fail(f"gene {self.gene_ids[k]!r} has strand {self.strands[k]!r}; expected one of "
                       f"{', '.join(repr(s) for s in STRANDS)}", "use '.' for an unknown strand")
        reversed_ = self.ends < self.starts
        if reversed_.any():
            k = int(np.flatnonzero(reversed_)[0])
            self._fail(f"gene {self.gene_ids[k]!r} ends at {self.ends[k]} before it starts at {self.starts[k]}",
                       "starts and ends are 1-based and closed: end >= start")
        if (self.starts < 1).any():
            k = int(np.flatnonzero(self.starts < 1)[0])
            self._fail(f"gene {self.gene_ids[k]!r} starts at {self.starts[k]}; 1-based positions start at 1",
                       "add 1 to 0-based (BED) starts")

    def _check_values(self) -> None:
        infinite = np.isinf(self.values)
        if infinite.any():
            i, j = (int(v[0]) for v in np.nonzero(infinite))
            self._fail(f"value {self.values[i, j]} for gene {self.gene_ids[i]!r}, sample {self.sample_ids[j]!r} "
                       f"is infinite ({int(infinite.sum())} infinite values in all); values must be finite or NaN",
                       "a log of zero? add a pseudo-count before taking logs, or set the value missing")

    # ------------------------------------------------------------------ shape
    @property
    def n_genes(self) -> int:
        return self.values.shape[0]

    @property
    def n_samples(self) -> int:
        return self.values.shape[1]

    @property
    def tss(self) -> np.ndarray:
        """``(n_genes,)`` int64 1-based transcription start site: ``ends`` on the ``-`` strand, else ``starts``."""
        return np.where(self.strands == "-", self.ends, self.starts)

    # ------------------------------------------------------------------ selections
    def subset_genes(self, index) -> "ExpressionSet":
        """The genes selected by a boolean mask ``(n_genes,)`` or an integer index array, in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape != (self.n_genes,):
                raise ValueError(f"a boolean gene mask must have shape ({self.n_genes},); got {index.shape}")
        elif len(np.unique(index)) != index.size:
            raise ValueError("the gene index repeats a gene; gene IDs must stay unique")
        return self._take_genes(index)

    def gene_block(self, start: int, stop: int) -> "ExpressionSet":
        """Genes ``start`` to ``stop - 1`` (0-based row range), as a rank reads its block."""
        if not 0 <= start <= stop <= self.n_genes:
            raise ValueError(f"gene block [{start}, {stop}) is not within [0, {self.n_genes}]")
        return self._take_genes(slice(start, stop))

    def align(self, sample_ids: Sequence[str]) -> "ExpressionSet":
        """The samples reordered (and subset) to ``sample_ids``; an :class:`InputError` names any that are
        missing here."""
        wanted = np.asarray(sample_ids, dtype=str).reshape(-1)
        order = sample_positions(self.sample_ids, wanted, self.source or "the expression data")
        return _replace(self, values=self.values[:, order], sample_ids=self.sample_ids[order])

    def _take_genes(self, index) -> "ExpressionSet":
        per_gene = {name: getattr(self, name)[index]
                    for name in ("values", "gene_ids", "chromosomes", "starts", "ends", "strands")}
        if self.group_ids is not None:
            per_gene["group_ids"] = self.group_ids[index]
        return _replace(self, **per_gene)

    # ------------------------------------------------------------------ pickling guard
    def __getstate__(self):
        if self.values.nbytes > PICKLE_LIMIT_BYTES:
            raise TypeError(
                f"an ExpressionSet of {self.n_genes} genes x {self.n_samples} samples "
                f"({self.values.nbytes / 2**20:.0f} MiB) is not pickled whole (limit "
                f"{PICKLE_LIMIT_BYTES / 2**20:.0f} MiB): write it to the results file once and let each rank read "
                f"its gene_block(start, stop)")
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __setstate__(self, state):
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        where = f", source={self.source!r}" if self.source else ""
        return f"ExpressionSet({self.n_genes} genes x {self.n_samples} samples{where})"


def sample_positions(available: np.ndarray, wanted: np.ndarray, source: str) -> np.ndarray:
    """Indices into ``available`` giving ``wanted`` in order; an :class:`InputError` lists the missing
    and the repeated wanted IDs."""
    values, counts = np.unique(wanted, return_counts=True)
    if (counts > 1).any():
        raise InputError(f"sample IDs asked for more than once: {show_few(values[counts > 1])}",
                         hint="give each sample once")
    position = {name: k for k, name in enumerate(available.tolist())}
    missing = [name for name in wanted.tolist() if name not in position]
    if missing:
        raise InputError(
            f"{len(missing)} of the {len(wanted)} samples asked for are not in {source}: {show_few(missing)}"
            + did_you_mean(missing[0], available),
            hint=f"{source} has {len(available)} samples, e.g. {show_few(available, 3)}; "
                 "samples are matched by ID, never by position")
    return np.array([position[name] for name in wanted.tolist()], dtype=np.intp)


def _integer_positions(values, name: str, source: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return array.astype(np.int64).reshape(-1)
    as_float = np.asarray(array, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
        bad = int(np.flatnonzero(~np.isfinite(as_float) | (as_float != np.round(as_float)))[0])
        raise InputError(f"{name}[{bad}] = {as_float[bad]!r} is not a whole base-pair position",
                         file=source or None, hint="positions are integers (bp, 1-based)")
    return as_float.astype(np.int64)


def _replace(expression: ExpressionSet, **changes) -> ExpressionSet:
    """``dataclasses.replace`` without re-running the checks a subset cannot break."""
    new = object.__new__(ExpressionSet)
    for f in fields(expression):
        object.__setattr__(new, f.name, changes.get(f.name, getattr(expression, f.name)))
    return new
