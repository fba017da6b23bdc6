"""Export results datasets as TSV, and describe a results file as text (``qtlhpc export`` / ``inspect``).

Rows and columns are named through the schema's *labels* datasets: a dataset declared with
``labels_for="position"`` (e.g. ``genoprob/position_names``) names every ``position`` axis, preferring
labels of the same stage; where no labels dataset of the right length is in the file, the 0-based index
is used.  Layout by number of dims:

* 0-D: one column, the dataset name;
* 1-D: two columns, the dim (labels) and the value;
* 2-D: wide, one row per entry of the row dim and one column per entry of the other; the row dim is
  ``rows`` if given, else the dim that is not a short "column" dim (trait, genotype, covariate, kinship;
  :data:`qtlhpc.schema.COLUMN_DIMENSIONS`), else the first;
* 3-D and more: long, one row per combination (last dim fastest): one column per dim, then the value.

Numbers are written to round-trip exactly at their stored precision (shortest repr); NaN as ``NaN``, infinities as ``Inf``/``-Inf``,
booleans as ``TRUE``/``FALSE``: what R's ``read.delim`` and pandas' ``read_csv`` parse.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path
from typing import List, Optional, TextIO, Union

import numpy as np

from qtlhpc import schema
from qtlhpc.errors import IncompleteResultError, InputError
from qtlhpc.store import integrity, lock
from qtlhpc.store.results import ResultsFile, StageInfo, open_results

ROWS_PER_READ = 4096


def format_value(value) -> str:
    """One TSV cell: exact shortest repr for floats, ``NaN``/``Inf``, ``TRUE``/``FALSE``, text cleaned of tabs."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Inf" if value > 0 else "-Inf"
        if isinstance(value, np.floating) and value.dtype != np.float64:
            return str(value)  # numpy's shortest repr at the value's own precision (0.3, not 0.30000001...)
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def dimension_labels(results: ResultsFile, variable: schema.Variable, axis: int, length: int) -> List[str]:
    """Names of the entries of ``variable``'s axis ``axis``: a labels dataset of that length, or indices."""
    dim = variable.dims[axis]
    for labels in schema.labels_for(dim, variable.stage):
        try:
            values = results.read(labels.path)
        except (InputError, IncompleteResultError):
            continue
        if values.shape == (length,):
            return [format_value(v) for v in values]
    return [str(i) for i in range(length)]


def _row_axis(variable: schema.Variable, rows: Optional[str]) -> int:
    if rows is not None:
        if rows not in variable.dims:
            raise InputError(f"--rows {rows!r} is not a dim of {variable.path} (its dims: {', '.join(variable.dims)})")
        return variable.dims.index(rows)
    first, second = variable.dims
    if first in schema.COLUMN_DIMENSIONS and second not in schema.COLUMN_DIMENSIONS:
        return 1
    return 0


def _header_name(dim: str, other_dims) -> str:
    return dim if dim not in other_dims else f"{dim}_index"


@contextlib.contextmanager
def _text_output(out):
    if isinstance(out, (str, Path)):
        with open(out, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
    else:
        yield out


def export_tsv(results_path, dataset_path: str, out: Union[str, Path, TextIO], *, rows: Optional[str] = None) -> int:
    """Write dataset ``"stage/name"`` of ``results_path`` to ``out`` (path or text stream) as TSV.

    Refuses a stage that is not complete.  Returns the number of data rows written.
    """
    variable = schema.get(dataset_path)
    with open_results(results_path) as results:
        shape = _dataset_info(results, variable).shape  # refuses an incomplete stage before writing anything
        results.verify(variable.path)  # and damaged data
        with _text_output(out) as handle:
            if variable.ndim == 0:
                handle.write(variable.name + "\n" + format_value(results.read(variable.path)[()]) + "\n")
                return 1
            if variable.ndim == 1:
                return _write_1d(results, variable, shape, handle)
            if variable.ndim == 2:
                return _write_2d(results, variable, shape, _row_axis(variable, rows), handle)
            return _write_long(results, variable, shape, handle)


def _dataset_info(results: ResultsFile, variable: schema.Variable):
    results.read(variable.path, tuple(slice(0, 0) for _ in variable.dims) or ())  # status and presence checks
    for stage in results.describe():
        for dataset in stage.datasets:
            if dataset.path == variable.path:
                return dataset
    raise AssertionError(f"{variable.path} vanished")


def _write_1d(results, variable, shape, handle) -> int:
    labels = dimension_labels(results, variable, 0, shape[0])
    handle.write(f"{variable.dims[0]}\t{variable.name}\n")
    for start in range(0, shape[0], ROWS_PER_READ):
        values = results.read(variable.path, (slice(start, start + ROWS_PER_READ),))
        handle.writelines(f"{labels[start + i]}\t{format_value(v)}\n" for i, v in enumerate(values))
    return shape[0]


def _write_2d(results, variable, shape, row_axis: int, handle) -> int:
    col_axis = 1 - row_axis
    row_labels = dimension_labels(results, variable, row_axis, shape[row_axis])
    col_labels = dimension_labels(results, variable, col_axis, shape[col_axis])
    handle.write("\t".join([_header_name(variable.dims[row_axis], ())] + col_labels) + "\n")
    for start in range(0, shape[row_axis], ROWS_PER_READ):
        window = slice(start, start + ROWS_PER_READ)
        block = results.read(variable.path, (window, slice(None)) if row_axis == 0 else (slice(None), window))
        block = block if row_axis == 0 else block.T
        for i, row in enumerate(block):
            handle.write("\t".join([row_labels[start + i]] + [format_value(v) for v in row]) + "\n")
    return shape[row_axis]


def _write_long(results, variable, shape, handle) -> int:
    labels = [dimension_labels(results, variable, axis, n) for axis, n in enumerate(shape)]
    handle.write("\t".join(list(variable.dims) + [variable.name]) + "\n")
    inner = shape[1:]
    for first in range(shape[0]):
        block = results.read(variable.path, (slice(first, first + 1),))[0]
        for index in np.ndindex(*inner):
            cells = [labels[0][first]] + [labels[axis + 1][i] for axis, i in enumerate(index)]
            handle.write("\t".join(cells + [format_value(block[index])]) + "\n")
    return int(np.prod(shape))


# ---------------------------------------------------------------------------------------------


def inspect_text(results_path) -> str:
    """A readable summary of a results file: stages, status, provenance, datasets, checkpoint progress."""
    with open_results(results_path) as results:
        stages = results.describe()
        root = results._collective(lambda h5: {k: str(v) for k, v in h5.attrs.items()})
    out = io.StringIO()
    out.write(f"{results_path}: qtlhpc {root.get('qtlhpc_version', '?')}, created {root.get('created', '?')}\n")
    holder = lock.read_holder(results_path)
    if holder is not None:
        alive = lock.holder_alive(holder)
        state = {True: "in use by a run", False: "lock left by a run that ended (the next run takes it over)",
                 None: "locked by a run this host cannot check"}[alive]
        out.write(f"  {state}: {holder.describe()} ({lock.lock_path(results_path)})\n")
    if not stages:
        out.write("  no stages yet\n")
    for stage in stages:
        _describe_stage(stage, out)
    return out.getvalue().rstrip("\n")


def _describe_stage(stage: StageInfo, out) -> None:
    attrs = stage.attributes
    status = stage.status
    if status == "stale":
        status += f" ({attrs.get('stale_because', '')}; readers refuse it)"
    elif status != "complete":
        status += " (interrupted or still running: rerun the same command to resume; readers refuse it)"
    out.write(f"\n[{stage.name}] {status}\n")
    out.write(f"  config_sha256 {str(attrs.get('config_sha256', ''))[:16]}  ranks {attrs.get('n_ranks', '?')}  "
              f"parallel_io {attrs.get('parallel_io', '?')}\n")
    times = f"  started {attrs.get('started', '')}"
    if attrs.get("resumed"):
        times += f"  resumed {attrs['resumed']}"
    if attrs.get("finished"):
        times += f"  finished {attrs['finished']}"
    out.write(times + "\n")
    if attrs.get("command_line"):
        out.write(f"  command: {attrs['command_line']}\n")
    for key, (n_done, n_blocks) in stage.checkpoints.items():
        out.write(f"  checkpoint {key}: {n_done}/{n_blocks} blocks done\n")
    rows = [(d.path.split("/", 1)[1], "x".join(map(str, d.shape)) or "scalar", "(" + ", ".join(d.dims) + ")",
             d.dtype, d.unit or "-", d.description) for d in stage.datasets]
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:5], widths)]
        out.write("  " + "  ".join(cells) + "  " + row[5] + "\n")


def verify_text(results_path):
    """``qtlhpc inspect --verify``: every dataset and finished block checked against its checksum.

    Returns ``(text, intact)``: one line per damaged dataset or block, and the datasets that carry no
    checksum (written by a qtlhpc before checksums were stored).
    """
    with open_results(results_path) as results:
        damage, unchecked = results._collective(integrity.verify_file)
    out = io.StringIO()
    out.write("\nverify:")
    if damage:
        out.write(f" {len(damage)} damaged (readers refuse them; rerun the stage with the same command to "
                  f"recompute them):\n")
        for found in damage:
            out.write(f"  DAMAGED {found}\n")
    else:
        out.write(" every checksum matches\n")
    for name in unchecked:
        out.write(f"  not checked (no checksum stored): {name}\n")
    return out.getvalue().rstrip("\n"), not damage
