"""Writers of the input formats, for round trips, the simulator and the demo.

Numbers are written in Python's shortest round-trip form (``repr(float)``), so reading a written file
gives back exactly the same arrays; integer-valued float matrices are written as integers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from qtlhpc.io.cross import ADDITIVE_CODE, DOMINANCE_CODE, GENOTYPE_STATES, Cross
from qtlhpc.io.rqtl import genotype_labels_for


def format_numbers(values: np.ndarray, missing: str = "NA") -> np.ndarray:
    """A float array as strings: exact shortest form, ``missing`` for NaN, integers without ``.0``."""
    values = np.asarray(values, dtype=float)
    out = np.empty(values.shape, dtype=object)
    nan = np.isnan(values)
    integral = ~nan & np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2**53)
    out[nan] = missing
    out[integral] = values[integral].astype(np.int64).astype(str)
    rest = ~nan & ~integral
    out[rest] = [repr(float(v)) for v in values[rest]]
    return out.astype(str)


def file_codes(cross: Cross) -> np.ndarray:
    """``(n_individuals, n_markers)`` genotype codes as R/qtl files hold them: the cross's codes, the X's
    g1/g2 codes (``Cross.x_chromosome``) turned back into AA/AB/BB per sex and direction, hemizygous males
    with the homozygous codes (AY as AA, BY as BB), as R/qtl's ``write.cross``."""
    if cross.x_chromosome is None or cross.cross_type == "generic":
        return cross.genotypes
    from qtlhpc.genetics.xchr import x_file_codes

    on_x = cross.chromosomes == str(cross.x_chromosome)
    codes = cross.genotypes.copy()
    codes[:, on_x] = x_file_codes(cross.genotypes[:, on_x], cross.cross_type, cross.x_classes())
    return codes


def _labels(cross: Cross, genotype_labels, codes: np.ndarray) -> list:
    labels = list(genotype_labels_for(cross.cross_type, genotype_labels))
    highest = int(codes.max(initial=0))
    if highest > len(labels):
        from qtlhpc.errors import ConfigError

        raise ConfigError(f"genotype_labels {labels} give no label for code {highest}"
                          + (" (BB: hemizygous BY males on the X of a backcross)" if cross.cross_type == "bc" else "")
                          + ": give a label for every code, in code order AA, AB, BB"
                          + (", not BB, not AA" if cross.cross_type in ("f2", "imf2") else ""))
    return labels


def genotype_strings(cross: Cross, genotype_labels: Optional[Sequence[str]] = None, missing: str = "-") -> np.ndarray:
    """``(n_individuals, n_markers)`` label strings of a cross's genotypes (numbers for generic; the X as
    :func:`file_codes`)."""
    if cross.cross_type == "generic":
        return format_numbers(cross.genotypes, missing)
    codes = file_codes(cross)
    lookup = np.array([missing] + _labels(cross, genotype_labels, codes), dtype=object)
    return lookup[codes.astype(np.intp)].astype(str)


def genotype_lines(cross: Cross, genotype_labels=None, missing: str = "-", sep: str = ",") -> list:
    """One string per individual: its genotype labels joined by ``sep``.

    Single-character labels (the usual case) are written through a byte table, without a Python
    string per cell."""
    if cross.cross_type != "generic" and cross.n_markers:
        codes = file_codes(cross)
        labels = _labels(cross, genotype_labels, codes)
        if all(len(t) == 1 and t.isascii() and t != "\0" for t in labels + [sep]):
            placeholder = missing if len(missing) == 1 and missing.isascii() else "\0"
            table = np.frombuffer("".join([placeholder] + labels).encode("ascii"), dtype=np.uint8)
            buffer = np.full((cross.n_individuals, 2 * cross.n_markers - 1), ord(sep), dtype=np.uint8)
            buffer[:, ::2] = table[codes.astype(np.intp)]
            lines = [row.tobytes().decode("ascii") for row in buffer]
            if placeholder != missing:
                lines = [line.replace(placeholder, missing) for line in lines]
            return lines
        words = [missing] + labels
        return [sep.join(map(words.__getitem__, row)) for row in codes.tolist()]
    return [sep.join(row) for row in genotype_strings(cross, genotype_labels, missing).tolist()]


def _write_lines(path, rows, sep: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(sep.join(row))
            handle.write("\n")


def _individual_columns(cross: Cross, id_name: str):
    """ID, numeric phenotypes, covariates, text phenotypes (R factors; '' written NA) and, when the cross
    has a sex or a pgm other than all 0 that no column carries, ``sex`` (0 female, 1 male) and ``pgm``
    columns (R/qtl's ``getsex`` reads them)."""
    names = [id_name] + list(cross.phenotype_names) + list(cross.covariate_names)
    values = np.column_stack([cross.phenotypes, cross.covariates]) if cross.covariates.size else cross.phenotypes
    columns = [cross.individuals.astype(str), format_numbers(values.reshape(cross.n_individuals, -1))]
    for name, text in cross.text_phenotypes.items():
        names.append(str(name))
        columns.append(np.where(np.asarray(text, dtype=str) == "", "NA", np.asarray(text, dtype=str))[:, None])
    present = {str(name).lower() for name in names[1:]}
    for name, values_of in (("sex", cross.sex), ("pgm", cross.pgm)):
        # pgm all 0 is R/qtl's default without a pgm column (readers set it so): not written
        if values_of is not None and name not in present and (name == "sex" or np.any(values_of != 0)):
            names.append(name)
            columns.append(np.asarray(values_of).astype(np.int64).astype(str)[:, None])
    block = np.column_stack(columns)
    return names, block


def write_rqtl_csv(cross: Cross, path, genotype_labels=None, missing: str = "-", id_name: str = "id",
                   sep: str = ",") -> None:
    """Write an R/qtl ``csv`` file: ID column, phenotypes, covariates (as phenotype columns), markers.

    Phenotype missing values are written ``NA``, genotype missing values ``missing``.  Read it back
    with ``covariates=list(cross.covariate_names)`` to recover the covariates.
    """
    names, individual_block = _individual_columns(cross, id_name)
    n_extra = len(names)
    rows = [names + list(cross.markers),
            [""] * n_extra + list(cross.chromosomes),
            [""] * n_extra + list(format_numbers(cross.positions))]
    lines = genotype_lines(cross, genotype_labels, missing, sep)
    body = [sep.join(left) + (sep + right if cross.n_markers else "")
            for left, right in zip(individual_block.tolist(), lines)]
    _write_lines(path, rows + [[line] for line in body], sep)


def write_rqtl_csvs(cross: Cross, genotype_path, phenotype_path, genotype_labels=None, missing: str = "-",
                    id_name: str = "id", sep: str = ",") -> None:
    """Write an R/qtl ``csvs`` pair: genotypes (ID + markers with map rows) and phenotypes (ID + traits
    + covariates)."""
    rows = [[id_name] + list(cross.markers), [""] + list(cross.chromosomes),
            [""] + list(format_numbers(cross.positions))]
    lines = genotype_lines(cross, genotype_labels, missing, sep)
    body = [[f"{name}{sep}{line}"] for name, line in zip(cross.individuals.tolist(), lines)]
    _write_lines(genotype_path, rows + body, sep)
    names, individual_block = _individual_columns(cross, id_name)
    _write_lines(phenotype_path, [names] + individual_block.tolist(), sep)


def write_matrix_tsv(path, ids: Sequence[str], names: Sequence[str], values: np.ndarray, id_name: str = "id",
                     missing: str = "NA", sep: str = "\t") -> None:
    """Write a table: header ``id_name, names...``, then one row per ID. ``values (n_ids, n_names)``."""
    values = np.asarray(values, dtype=float).reshape(len(ids), len(names))
    body = np.column_stack([np.asarray(ids, dtype=str), format_numbers(values, missing)])
    _write_lines(path, [[id_name] + [str(n) for n in names]] + body.tolist(), sep)


def write_map(path, markers, chromosomes, positions, sep: str = "\t") -> None:
    """Write a map file: header ``marker chromosome position``, one row per marker."""
    rows = [["marker", "chromosome", "position"]]
    rows += np.column_stack([np.asarray(markers, dtype=str), np.asarray(chromosomes, dtype=str),
                             format_numbers(positions)]).tolist()
    _write_lines(path, rows, sep)


def epistatic_codes(cross: Cross):
    """``(Z, W)`` each ``(n_individuals, n_markers)``: the cross's own codes if present, else Xu's (2013)
    codes of the fully informative genotypes (Z = 1/0/-1 for AA/AB/BB, W = 1 for AB, -1 for AA or BB);
    missing and partially informative genotypes give NaN (their expectations need genotype
    probabilities)."""
    if cross.additive_codes is not None and cross.dominance_codes is not None:
        return np.asarray(cross.additive_codes, float), np.asarray(cross.dominance_codes, float)
    assert cross.cross_type != "generic", "a generic cross needs additive_codes and dominance_codes"
    states = GENOTYPE_STATES[cross.cross_type]
    z_lookup = np.full(6, np.nan)
    w_lookup = np.full(6, np.nan)
    for code, state in enumerate(states, start=1):
        z_lookup[code] = ADDITIVE_CODE[state]
        w_lookup[code] = DOMINANCE_CODE[state]
    index = cross.genotypes.astype(np.intp)
    return z_lookup[index], w_lookup[index]


def expected_epistatic_codes(cross: Cross):
    """``(Z, W)`` as :func:`epistatic_codes`, complete: each NaN cell (a missing or partially
    informative genotype) is replaced by its marker's mean code over the individuals with a code, i.e.
    the expectation Z = p_AA - p_BB, W = p_AB - p_AA - p_BB under the marker's observed genotype
    frequencies.  A marker with no code at all gets Z = W = 0."""
    additive, dominance = epistatic_codes(cross)
    return _fill_with_marker_mean(additive), _fill_with_marker_mean(dominance)


def _fill_with_marker_mean(codes: np.ndarray) -> np.ndarray:
    """``codes (n_individuals, n_markers)`` with NaN replaced by the column mean (0 for all-NaN columns)."""
    codes = np.array(codes, dtype=float)
    missing = np.isnan(codes)
    if missing.any():
        n_present = (~missing).sum(axis=0)
        means = np.divide(np.where(missing, 0.0, codes).sum(axis=0), n_present,
                          out=np.zeros(codes.shape[1]), where=n_present > 0)
        codes[missing] = np.broadcast_to(means, codes.shape)[missing]
    return codes


def write_pepis(cross: Cross, z_path, w_path, pheno_path, map_path=None, id_name: str = "id",
                sep: str = "\t") -> None:
    """Write PEPIS-style input: Z and W matrices (header of marker names, first column IDs), a phenotype
    table (ID + traits + covariates) and, if ``map_path``, a map file.

    Z and W are complete, as :func:`qtlhpc.io.pepis.read_pepis` requires: missing and partially
    informative genotypes get expected codes (:func:`expected_epistatic_codes`)."""
    additive, dominance = expected_epistatic_codes(cross)
    write_matrix_tsv(z_path, cross.individuals, cross.markers, additive, id_name, sep=sep)
    write_matrix_tsv(w_path, cross.individuals, cross.markers, dominance, id_name, sep=sep)
    names, individual_block = _individual_columns(cross, id_name)
    _write_lines(pheno_path, [names] + individual_block.tolist(), sep)
    if map_path is not None:
        write_map(map_path, cross.markers, cross.chromosomes, cross.positions, sep)
