"""Tabular data files, read with pyarrow: a ``.csv`` or a ``.parquet`` file and its target.

``read_table`` turns a file into numeric features (float64, one column per feature, in the
file's order) and the target column's values (strings for a CSV, as the file writes them;
the column's own values for Parquet), with errors that name the file, the column and the
line (CSV) or row (Parquet) at fault. ``table_columns`` reads only the column names and
``guess_target`` picks the column that most likely holds the labels, for ``stabcheck init``.

pyarrow does the parsing (quoting, a UTF-8 byte-order mark, line endings); this module
adds the rules a probe needs: a named target, every other column numeric, no empty label.
The user's file is only ever read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from stabcheck.errors import InputError

__all__ = ["TABLE_SUFFIXES", "Table", "guess_target", "read_table", "table_columns"]

TABLE_SUFFIXES: dict[str, str] = {".csv": "a CSV", ".parquet": "a Parquet file"}

# Column names that say "the labels" (compared case-insensitively), in order of preference.
_LABEL_NAMES = ("label", "labels", "target", "class", "y", "outcome")


@dataclass(frozen=True)
class Table:
    """The features and target of a table file."""

    x: np.ndarray  # (rows, features) float64
    labels: np.ndarray  # one value per row: str for a CSV, the column's own type for Parquet
    columns: tuple[str, ...]  # every column, the target included


def _kind(path: Path) -> str:
    return TABLE_SUFFIXES.get(path.suffix.lower(), "a table")


def table_columns(spec: str, path: Path) -> tuple[str, ...]:
    """The column names of a ``.csv`` (its header) or ``.parquet`` file (its schema)."""
    if path.suffix.lower() == ".parquet":
        return tuple(_parquet(spec, lambda: pq.read_schema(path)).names)
    return _csv_header(spec, path)


def guess_target(columns: Sequence[str]) -> tuple[str, str] | None:
    """The column most likely to hold the labels, and why: a column named like one
    (``label``, ``target``, ``class``, ``y``, ...), else the last column. None without
    columns."""
    if not columns:
        return None
    lowered = {c.strip().lower(): c for c in reversed(columns)}
    for name in _LABEL_NAMES:
        if name in lowered:
            return lowered[name], f"a column named '{lowered[name]}'"
    return columns[-1], "the last column"


def read_table(spec: str, path: Path, target: str | None) -> Table:
    """Read ``path`` (``.csv`` or ``.parquet``) and split off the ``target`` column.

    Raises ``InputError`` for a file that cannot be read, has no rows, no such target, no
    feature column, a feature that is not numeric or a row without a label.
    """
    if path.suffix.lower() == ".parquet":
        return _read_parquet(spec, path, target)
    return _read_csv(spec, path, target)


def _target_index(spec: str, path: Path, columns: Sequence[str], target: str | None) -> int:
    listed = ", ".join(columns)
    if target is None:
        raise InputError(
            f"data '{spec}' is {_kind(path)}, so a target column must be named "
            f"(columns: {listed})"
        )
    if target not in columns:
        raise InputError(f"data '{spec}' has no target column '{target}' (columns: {listed})")
    if len(columns) == 1:
        raise InputError(f"data '{spec}' has only the target column; no features")
    return list(columns).index(target)


# ------------------------------------------------------------------------------- csv


def _csv_error(spec: str, exc: Exception) -> InputError:
    text = str(exc)
    if "UTF8" in text or "UTF-8" in text:
        return InputError(f"data '{spec}' is not UTF-8 text ({text.splitlines()[0]})")
    return InputError(f"data '{spec}' is not a readable CSV file ({text.splitlines()[0]})")


def _csv_header(spec: str, path: Path) -> tuple[str, ...]:
    """The header's names, stripped."""
    return tuple(name.strip() for name in _raw_names(spec, path))


def _raw_names(spec: str, path: Path) -> list[str]:
    """The header's names as pyarrow reads them (unstripped: the keys of column_types)."""
    try:
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"))
        names = list(reader.schema.names)
        reader.close()
    except OSError as exc:
        raise InputError(f"data '{spec}' cannot be read ({exc.strerror or exc})") from None
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise InputError(f"data '{spec}' is empty; a CSV needs a header row") from None
        raise _csv_error(spec, exc) from None
    return names


def _nonempty_lines(path: Path) -> list[int]:
    """The physical line of each pyarrow row number (minus one): pyarrow numbers the rows of
    the non-empty lines from 1, the header's (only for error messages: a quoted line break
    shifts it)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        return [i + 1 for i, line in enumerate(fh.read().splitlines()) if line]


def _line_of(path: Path, row: int, skipped: set[int]) -> int:
    """The physical line of the table's ``row`` (the table leaves out the rows
    ``skipped``)."""
    lines = _nonempty_lines(path)
    numbers = [n for n in range(2, len(lines) + 1) if n not in skipped]
    return lines[numbers[row] - 1] if row < len(numbers) else 0


def _read_csv(spec: str, path: Path, target: str | None) -> Table:
    raw = _raw_names(spec, path)
    columns = tuple(name.strip() for name in raw)
    t = _target_index(spec, path, columns, target)
    short: list[tuple[int, int]] = []  # (row, fields) of rows with the wrong field count
    skipped: set[int] = set()  # pyarrow's numbers of the rows left out

    def on_invalid(row: pacsv.InvalidRow) -> str:
        skipped.add(row.number or 0)
        if row.text.strip(" \t\r\n,"):  # a blank line (or one of commas only) is skipped
            short.append((row.number or 0, row.actual_columns))
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in raw},
                null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )
    except OSError as exc:
        raise InputError(f"data '{spec}' cannot be read ({exc.strerror or exc})") from None
    except pa.ArrowInvalid as exc:
        raise _csv_error(spec, exc) from None
    if short:
        number, fields = short[0]
        lines = _nonempty_lines(path)
        line = lines[number - 1] if 0 < number <= len(lines) else number
        raise InputError(
            f"data '{spec}': line {line} has {fields} fields but the header has {len(columns)}"
        )
    cells = [pc.utf8_trim_whitespace(table.column(i)) for i in range(len(columns))]
    blank = np.ones(table.num_rows, dtype=bool)  # rows of empty cells only are skipped
    for column in cells:
        blank &= np.asarray(pc.equal(column, "").to_numpy(zero_copy_only=False), dtype=bool)
    keep = np.flatnonzero(~blank)
    if keep.size == 0:
        raise InputError(f"data '{spec}' has a header but no data rows")

    labels = np.asarray(cells[t].take(pa.array(keep)).to_numpy(zero_copy_only=False), dtype=str)
    empty = np.flatnonzero(labels == "")
    if empty.size:
        line = _line_of(path, int(keep[empty[0]]), skipped)
        raise InputError(
            f"data '{spec}': line {line} has an empty target '{target}'; every row needs a label"
        )
    x = np.empty((keep.size, len(columns) - 1), dtype=np.float64)
    for j, i in enumerate(i for i in range(len(columns)) if i != t):
        column = cells[i].take(pa.array(keep))
        try:
            x[:, j] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            row = _first_non_number(column)
            line = _line_of(path, int(keep[row]), skipped)
            cell = table.column(i)[int(keep[row])].as_py()
            raise InputError(
                f"data '{spec}': every column but the target must be numeric; column "
                f"'{columns[i]}' has {cell!r} on line {line}"
            ) from None
    return Table(x, labels, columns)


def _first_non_number(column: pa.ChunkedArray) -> int:
    """The row of the first value pyarrow cannot read as a number (halving the column: a
    few casts, not one per row)."""
    lo, hi = 0, len(column)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(column.slice(lo, mid - lo), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            hi = mid
        else:
            lo = mid
    return lo


# --------------------------------------------------------------------------- parquet


def _parquet(spec: str, read: Callable[[], Any]) -> Any:
    """``read()`` of a Parquet file, its failures as one-line input errors."""
    try:
        return read()
    except OSError as exc:
        raise InputError(f"data '{spec}' cannot be read ({exc.strerror or exc})") from None
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        raise InputError(
            f"data '{spec}' is not a readable Parquet file ({str(exc).splitlines()[0]})"
        ) from None


def _read_parquet(spec: str, path: Path, target: str | None) -> Table:
    columns = tuple(_parquet(spec, lambda: pq.read_schema(path)).names)
    if not columns:
        raise InputError(f"data '{spec}' has no columns")
    t = _target_index(spec, path, columns, target)
    table = _parquet(spec, lambda: pq.read_table(path))
    if table.num_rows == 0:
        raise InputError(f"data '{spec}' has columns but no data rows")
    label_column = table.column(t)
    if label_column.null_count:
        row = int(np.flatnonzero(np.asarray(label_column.is_null()))[0])
        raise InputError(
            f"data '{spec}': row {row} has no target '{target}'; every row needs a label"
        )
    if pa.types.is_dictionary(label_column.type):
        label_column = label_column.cast(label_column.type.value_type)
    kind = label_column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
            or pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise InputError(
            f"data '{spec}': the target '{target}' must hold numbers or strings "
            f"(its type is {kind})"
        )
    labels = label_column.to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(kind):
        labels = labels.astype(np.int64)
    elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        labels = np.asarray(labels, dtype=str)
    x = np.empty((table.num_rows, len(columns) - 1), dtype=np.float64)
    for j, i in enumerate(i for i in range(len(columns)) if i != t):
        column = table.column(i)
        kind = column.type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                or pa.types.is_boolean(kind) or pa.types.is_decimal(kind)):
            first = next((v for v in column.to_pylist() if v is not None), None)
            raise InputError(
                f"data '{spec}': every column but the target must be numeric; column "
                f"'{columns[i]}' is {kind} (first value {first!r})"
            )
        x[:, j] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)  # null: NaN
    return Table(x, labels, columns)
