"""CSV and Parquet files read through pyarrow (``inputs.tables``), as ``load_dataset`` sees
them: the same rules and errors for both, the user's file only read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stabcheck.errors import InputError
from stabcheck.inputs.data import load_dataset
from stabcheck.inputs.tables import guess_target, read_table, table_columns


def _parquet(path: Path, **columns: object) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------- csv


def test_csv_quotes_a_byte_order_mark_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b'\xef\xbb\xbf"a","b, quoted",kind\r\n1,2,"cat"\r\n\r\n'
                     b'3,4,dog\r\n,,\r\n 5 ,6,cat\r\n')
    before = _digest(path)
    table = read_table("d.csv", path, "kind")
    assert table.columns == ("a", "b, quoted", "kind")
    assert table.x.tolist() == [[1, 2], [3, 4], [5, 6]] and table.x.dtype == np.float64
    assert table.labels.tolist() == ["cat", "dog", "cat"]
    assert _digest(path) == before


@pytest.mark.parametrize(
    ("text", "target", "match"),
    [
        ("a,b,y\n1,2,0\n\n3,x,1\n", "y", r"column 'b' has 'x' on line 4"),
        ("a,b,y\n1,2,0\n3,1_000,1\n", "y", r"column 'b' has '1_000' on line 3"),
        ("a,b,y\n1,2,0\n3,,1\n", "y", r"column 'b' has '' on line 3"),
        ("a,b,y\n1,2,0\n3,4,\n", "y", r"line 3 has an empty target 'y'; every row needs a label"),
        ("a,b,y\n1,2,0\n\n3,4,5,6\n", "y", "line 4 has 4 fields but the header has 3"),
        ("y\n1\n2\n", "y", "has only the target column; no features"),
        ("", "y", "is empty; a CSV needs a header row"),
    ],
    ids=["non-numeric-after-a-blank-line", "underscore", "empty-feature", "empty-label",
         "long-row", "only-target", "empty-file"],
)
def test_csv_errors_name_the_column_and_line(tmp_path, text, target, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as info:
        load_dataset(str(path), target=target)
    assert "\n" not in str(info.value) and "bad.csv" in str(info.value)


def test_csv_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("a,b,y\n1,2,caf\xe9\n3,4,bar\n".encode("latin-1"))
    with pytest.raises(InputError, match="is not UTF-8 text"):
        load_dataset(str(path), target="y")


def test_a_large_csv_reads_whole(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50_000, 3))
    y = (x[:, 0] > 1.0).astype(int)
    path = tmp_path / "big.csv"
    rows = "\n".join(f"{float(a)!r},{float(b)!r},{float(c)!r},{label}"
                     for (a, b, c), label in zip(x, y, strict=True))
    path.write_text("a,b,c,label\n" + rows + "\n")
    ds = load_dataset(str(path), target="label", holdout=0.0, max_samples=10**6)
    assert ds.n_total == 50_000 and ds.class_names == ("0", "1")
    assert np.array_equal(np.sort(ds.x_train, axis=0), np.sort(x.astype(np.float32), axis=0))


# --------------------------------------------------------------------------- parquet


def test_parquet_with_string_labels(tmp_path):
    path = _parquet(tmp_path / "d.parquet", a=[float(i) for i in range(12)],
                    b=list(range(12)), kind=["dog" if i % 3 == 0 else "cat" for i in range(12)])
    before = _digest(path)
    ds = load_dataset(str(path), target="kind", holdout=0.25)
    assert ds.class_names == ("cat", "dog") and ds.label_format == "binary"
    assert ds.x_train.shape[1:] == (2,) and ds.n_total == 12
    order = np.argsort(ds.x_train[:, 0])
    assert ds.c_train[order].tolist() == [int(i % 3 == 0) for i in ds.x_train[order, 0]]
    assert _digest(path) == before


def test_parquet_integer_labels_keep_their_values(tmp_path):
    path = _parquet(tmp_path / "d.parquet", label=[10, 2, 10, 5, 2, 5], f=[1, 2, 3, 4, 5, 6])
    ds = load_dataset(str(path), target="label", holdout=0.0)
    assert ds.class_names == ("2", "5", "10") and ds.label_format == "sparse"
    assert ds.c_train[np.argsort(ds.x_train[:, 0])].tolist() == [2, 0, 2, 1, 0, 1]


def test_parquet_float_target_is_a_regression_and_whole_floats_are_classes(tmp_path):
    prices = _parquet(tmp_path / "p.parquet", a=list(range(20)),
                      price=[0.5 + 1.25 * i for i in range(20)])
    ds = load_dataset(str(prices), target="price", holdout=0.0)
    assert ds.task == "regression" and ds.y_train.dtype == np.float32
    whole = _parquet(tmp_path / "w.parquet", a=list(range(20)), y=[float(i % 2) for i in range(20)])
    assert load_dataset(str(whole), target="y").class_names == ("0", "1")
    named = load_dataset(str(prices), target="price", task="classification", holdout=0.0)
    assert named.n_classes == 20 and "0.5" in named.class_names


@pytest.mark.parametrize(
    ("columns", "target", "match"),
    [
        ({"a": [1.0, 2.0], "y": [0, 1]}, None,
         r"is a Parquet file, so a target column must be named \(columns: a, y\)"),
        ({"a": [1.0, 2.0], "y": [0, 1]}, "label", r"no target column 'label' \(columns: a, y\)"),
        ({"a": ["x", "z"], "y": [0, 1]}, "y",
         r"every column but the target must be numeric; column 'a' is string \(first value 'x'\)"),
        ({"a": [1.0, 2.0, 3.0], "y": [0, None, 1]}, "y", "row 1 has no target 'y'"),
        ({"a": [1.0, None, 3.0], "y": [0, 1, 1]}, "y", r"1 NaN/Inf value \(first in row 1\)"),
        ({"a": pa.array([], pa.float64()), "y": pa.array([], pa.int64())}, "y", "no data rows"),
    ],
    ids=["no-target", "wrong-target", "non-numeric", "null-label", "null-feature", "no-rows"],
)
def test_parquet_errors(tmp_path, columns, target, match):
    path = _parquet(tmp_path / "bad.parquet", **columns)
    with pytest.raises(InputError, match=match) as info:
        load_dataset(str(path), target=target)
    assert "\n" not in str(info.value) and "bad.parquet" in str(info.value)


def test_a_file_that_is_not_parquet(tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="is not a readable Parquet file"):
        load_dataset(str(path), target="b")


# ----------------------------------------------------------------------- the target


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["pixel0", "pixel1", "Label"], ("Label", "a column named 'Label'")),
        (["target", "a", "b"], ("target", "a column named 'target'")),
        (["a", "class", "b"], ("class", "a column named 'class'")),
        (["y", "a", "label"], ("label", "a column named 'label'")),
        (["a", "b", "price"], ("price", "the last column")),
        ([], None),
    ],
)
def test_guess_target(columns, expected):
    assert guess_target(columns) == expected


def test_table_columns_of_both_kinds(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text(" a , b ,label\n1,2,0\n")
    parquet = _parquet(tmp_path / "d.parquet", a=[1.0], b=[2.0], label=[0])
    assert table_columns("d.csv", csv) == table_columns("d.parquet", parquet) == (
        "a", "b", "label")
