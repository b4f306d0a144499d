"""Tests of ``stabcheck.inputs.data``: specs, labels, long tails, sampling, prepared files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from stabcheck.errors import ConfigError, InputError
from stabcheck.inputs.data import load_dataset
from stabcheck.inputs.sampling import RARE_CLASS_SAMPLES, rare_class_warning
from stabcheck.inputs.sampling import holdout_cap as _holdout_cap
from stabcheck.protocol.dataset import Dataset, load_prepared, save_prepared


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _blobs(n_per_class: tuple[int, ...], dim: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)]).astype(np.int64)
    x = (rng.normal(size=(y.size, dim)) + y[:, None]).astype(np.float32)
    return x, y


def _load_arrays(tmp: Path, x: np.ndarray, y: np.ndarray, **kwargs) -> Dataset:
    return load_dataset(str(_npz(tmp / "data.npz", x=x, y=y)), **kwargs)


def _counts(c: np.ndarray, k: int) -> list[int]:
    return np.bincount(c, minlength=k).tolist()


# --------------------------------------------------------------------------- builtin


@pytest.mark.parametrize(
    ("spec", "n_total", "k", "label_format", "input_shape", "first_name"),
    [
        ("builtin:digits", 1797, 10, "sparse", (8, 8, 1), "0"),
        ("builtin:breast_cancer", 569, 2, "binary", (30,), "malignant"),
    ],
)
def test_builtin(spec, n_total, k, label_format, input_shape, first_name):
    ds = load_dataset(spec)
    s = ds.summary()
    assert (ds.source, ds.n_total, ds.n_classes, ds.label_format) == (
        spec,
        n_total,
        k,
        label_format,
    )
    assert s.input_shape == input_shape and s.class_names[0] == first_name
    assert s.n_samples + s.n_holdout == n_total
    assert sum(s.class_counts) == s.n_samples and len(s.class_counts) == k
    assert ds.x_train.dtype == np.float32 and ds.x_val.dtype == np.float32
    assert ds.y_train.dtype == np.int64 and ds.y_train.ndim == 1
    np.testing.assert_array_equal(ds.y_train, ds.c_train)
    if spec == "builtin:digits":  # pixels scaled to [0, 1]
        assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    else:  # features standardized over the whole set
        x = np.concatenate([ds.x_train, ds.x_val])
        np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-5)
        np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-4)


def test_builtin_unknown_lists_known():
    with pytest.raises(InputError, match=r"builtin:breast_cancer, builtin:digits") as info:
        load_dataset("builtin:mnist")
    assert info.value.exit_code == 2


# ------------------------------------------------------------------------- sampling


def test_imbalance_makes_a_long_tail():
    full = load_dataset("builtin:digits", holdout=0.0)
    ds = load_dataset("builtin:digits", holdout=0.0, imbalance=0.1)
    before, after = _counts(full.c_train, 10), _counts(ds.c_train, 10)
    assert after[0] == before[0]  # class 0 keeps every row
    assert after[-1] == round(before[-1] * 0.1)
    assert np.all(np.diff(after) <= 0)
    assert ds.n_total == sum(after) < full.n_total


def test_imbalance_keeps_two_rows_per_class(tmp_path):
    x, y = _blobs((50, 50, 3))
    ds = _load_arrays(tmp_path, x, y, imbalance=0.01)
    assert _counts(np.concatenate([ds.c_train, ds.c_val]), 3) == [50, 5, 2]
    assert _counts(ds.c_val, 3)[2] == 1  # still split: one held out


def test_stratified_split_keeps_every_class_in_both_parts(tmp_path):
    x, y = _blobs((200, 20, 2))
    ds = _load_arrays(tmp_path, x, y, holdout=0.25)
    assert _counts(ds.c_train, 3) == [150, 15, 1]
    assert _counts(ds.c_val, 3) == [50, 5, 1]
    # rows are shuffled, not grouped by class
    assert not np.all(np.diff(ds.c_train) >= 0)


def test_caps_are_stratified_and_keep_every_class(tmp_path):
    x, y = _blobs((3000, 300, 3))
    ds = _load_arrays(tmp_path, x, y, max_samples=100, holdout=0.5)
    train, val = _counts(ds.c_train, 3), _counts(ds.c_val, 3)
    assert sum(train) == 100 and train[0] > 85 and train[1] > 5 and train[2] == 1
    assert sum(val) == 1000 and min(val) >= 1  # held-out cap is max(1000, max_samples // 4)


def test_same_seed_same_rows_other_seed_other_rows():
    a = load_dataset("builtin:digits", max_samples=300, seed=7)
    b = load_dataset("builtin:digits", max_samples=300, seed=7)
    c = load_dataset("builtin:digits", max_samples=300, seed=8)
    for name in ("x_train", "y_train", "c_train", "x_val", "y_val", "c_val"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.x_train, c.x_train)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_samples": 0}, "max_samples"),
        ({"holdout": 1.0}, "holdout"),
        ({"holdout": -0.1}, "holdout"),
        ({"imbalance": 0.0}, "imbalance"),
        ({"imbalance": 1.5}, "imbalance"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        load_dataset("builtin:breast_cancer", **kwargs)


# ------------------------------------------------------------------------------ npz


def test_npz_with_given_validation_split(tmp_path):
    x, y = _blobs((30, 20))
    xv, yv = _blobs((5, 7), seed=1)
    path = _npz(tmp_path / "d.npz", x=x, y=y, x_val=xv, y_val=yv)
    ds = load_dataset(str(path), holdout=0.5)
    assert (len(ds.x_train), len(ds.x_val), ds.n_total) == (50, 12, 62)
    assert sorted(map(tuple, ds.x_val.tolist())) == sorted(map(tuple, xv.tolist()))
    assert _counts(ds.c_val, 2) == [5, 7]


@pytest.mark.parametrize(
    ("y", "label_format", "class_names", "c_expected"),
    [
        (np.eye(3)[[0, 1, 2, 1, 0, 2]], "onehot", ("0", "1", "2"), [0, 1, 2, 1, 0, 2]),
        (np.array([[0], [1], [1], [0], [1], [0]]), "binary", ("0", "1"), [0, 1, 1, 0, 1, 0]),
        (np.array([3.0, 7.0, 3.0, 9.0, 7.0, 9.0]), "sparse", ("3", "7", "9"), [0, 1, 0, 2, 1, 2]),
        (np.array(["b", "a", "b", "c", "a", "c"]), "sparse", ("a", "b", "c"), [1, 0, 1, 2, 0, 2]),
        (np.array([True, False, True, False, True, False]), "binary", ("0", "1"), None),
    ],
    ids=["onehot", "n-by-1", "float-integral", "strings", "bool"],
)
def test_npz_label_forms(tmp_path, y, label_format, class_names, c_expected):
    x = np.arange(6, dtype=np.float64)  # rank 1: one feature per row
    ds = load_dataset(str(_npz(tmp_path / "d.npz", x=x, y=y)), holdout=0.0)
    assert (ds.label_format, ds.class_names) == (label_format, class_names)
    assert ds.x_train.shape == (6, 1)
    rows = ds.x_train[:, 0].astype(int)  # x is the row number: undo the shuffle
    if c_expected is not None:
        assert ds.c_train[np.argsort(rows)].tolist() == c_expected
    if label_format == "onehot":
        assert ds.y_train.dtype == np.float32 and ds.y_train.shape == (6, 3)
        np.testing.assert_array_equal(ds.y_train.argmax(axis=1), ds.c_train)
    else:
        assert ds.y_train.dtype == np.int64 and ds.y_train.ndim == 1


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"x": np.zeros((4, 2)), "a": np.zeros(4)}, r"has no array 'y' \(found: x, a\)"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0])}, r"x has 4, y has 3 rows"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(4)}, r"has 1 class \(0\)"),
        ({"x": np.zeros((3, 2)), "y": np.array([0.0, np.nan, 1.0])}, "NaN"),
        ({"x": np.zeros((3, 2)), "y": np.array([[1, 1], [0, 1], [1, 0]])}, "multi-label"),
        ({"x": np.zeros((3, 2)), "y": np.zeros((3, 2, 2))}, "one label per sample"),
        ({"x": np.array(["a", "b"]), "y": np.array([0, 1])}, "must be numeric"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0, 1]), "x_val": np.zeros((2, 2))}, "y_val"),
        (
            {
                "x": np.zeros((4, 2)),
                "y": np.array([0, 1, 0, 1]),
                "x_val": np.zeros((2, 3)),
                "y_val": np.array([0, 1]),
            },
            "must match",
        ),
    ],
    ids=[
        "no-y",
        "lengths",
        "one-class",
        "nan",
        "multilabel",
        "rank3",
        "string-x",
        "half-val",
        "val-shape",
    ],
)
def test_npz_errors(tmp_path, arrays, match):
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match=match) as info:
        load_dataset(str(path))
    assert "\n" not in str(info.value) and "bad.npz" in str(info.value)


def test_npz_with_object_arrays_is_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.zeros((2, 2)), y=np.array([0, "a"], dtype=object))
    with pytest.raises(InputError, match="pickled"):
        load_dataset(str(path))


def test_user_file_is_left_byte_identical(tmp_path):
    x, y = _blobs((40, 40))
    path = _npz(tmp_path / "mine.npz", x=x, y=y)
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    ds = load_dataset(str(path), imbalance=0.5)
    ds.x_train[:] = 0  # the dataset's arrays are copies, not views of the file
    after = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    assert before == after
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.npz"]


def test_relative_path_resolves_against_base_dir(tmp_path):
    x, y = _blobs((10, 10))
    _npz(tmp_path / "rel.npz", x=x, y=y)
    ds = load_dataset("rel.npz", base_dir=tmp_path)
    assert ds.source == "rel.npz" and ds.n_total == 20


@pytest.mark.parametrize(
    ("name", "match"),
    [("nope.npz", r"data file not found: .*nope\.npz"), ("notes.txt", r"unsupported type '\.txt'")],
)
def test_missing_or_unknown_file(tmp_path, name, match):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=match):
        load_dataset(name, base_dir=tmp_path)


def test_non_integer_float_labels_are_a_regression_target_unless_classes_are_asked(tmp_path):
    """Floats with non-integer values were refused ("stabcheck probes
    classification"); they are a regression target now, and an error under
    ``task="classification"`` only."""
    path = _npz(tmp_path / "bad.npz", x=np.zeros((3, 2)), y=np.array([0.5, 1.0, 0.0]))
    ds = load_dataset(str(path), holdout=0.0)
    assert ds.task == "regression" and ds.label_format == "continuous"
    assert ds.n_classes == 0 and ds.summary().to_json()["class_counts"] == {}
    with pytest.raises(InputError, match="non-integer") as info:
        load_dataset(str(path), task="classification")
    assert "\n" not in str(info.value) and "bad.npz" in str(info.value)


# ------------------------------------------------------------------------------ csv


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_with_string_labels(tmp_path):
    rows = "\n".join(f"{i},{i * 0.5},{'cat' if i % 3 else 'dog'}" for i in range(12))
    path = _csv(tmp_path / "d.csv", "a,b,kind\n" + rows + "\n\n")
    ds = load_dataset(str(path), target="kind", holdout=0.25)
    assert ds.class_names == ("cat", "dog") and ds.label_format == "binary"
    assert ds.x_train.shape[1:] == (2,) and ds.n_total == 12
    assert _counts(ds.c_train, 2) == [6, 3] and _counts(ds.c_val, 2) == [2, 1]
    order = np.argsort(ds.x_train[:, 0])
    assert ds.c_train[order].tolist() == [int(i % 3 == 0) for i in ds.x_train[order, 0]]


def test_csv_with_integer_labels_maps_sorted_values(tmp_path):
    path = _csv(tmp_path / "d.csv", "label,f\n10,1\n2,2\n10,3\n5,4\n2,5\n5,6\n")
    ds = load_dataset(str(path), target="label", holdout=0.0)
    assert ds.class_names == ("2", "5", "10") and ds.label_format == "sparse"
    assert ds.c_train[np.argsort(ds.x_train[:, 0])].tolist() == [2, 0, 2, 1, 0, 1]


@pytest.mark.parametrize(
    ("text", "target", "match"),
    [
        ("a,b,y\n1,2,0\n3,x,1\n", "y", r"column 'b' has 'x' on line 3"),
        ("a,b,y\n1,2,0\n3,4,1\n", None, r"target column must be named \(columns: a, b, y\)"),
        ("a,b,y\n1,2,0\n3,4,1\n", "label", r"no target column 'label' \(columns: a, b, y\)"),
        ("a,b,y\n1,2,0\n3,4\n", "y", "line 3 has 2 fields"),
        ("a,b,y\n", "y", "no data rows"),
    ],
    ids=["non-numeric", "no-target", "wrong-target", "short-row", "no-rows"],
)
def test_csv_errors(tmp_path, text, target, match):
    path = _csv(tmp_path / "bad.csv", text)
    with pytest.raises(InputError, match=match):
        load_dataset(str(path), target=target)


# --------------------------------------------------------------------------- images


def _image_folder(root: Path, mode: str = "RGB", odd_size: bool = False) -> Path:
    from PIL import Image

    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(3):
            size = (7, 5) if odd_size and (c, i) == (1, 2) else (4, 3)
            color = (40 * c + 10 * i, 100, 200) if mode == "RGB" else 40 * c + 10 * i
            Image.new(mode, size, color).save(root / name / f"img{i}.png")
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


@pytest.mark.parametrize(("mode", "channels"), [("RGB", 3), ("L", 1)])
def test_image_folder(tmp_path, mode, channels):
    root = _image_folder(tmp_path / "imgs", mode=mode, odd_size=True)
    ds = load_dataset(str(root), holdout=1 / 3)
    assert ds.class_names == ("cat", "dog") and ds.label_format == "binary"
    assert ds.x_train.shape == (4, 3, 4, channels) and ds.x_val.shape == (2, 3, 4, channels)
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() <= ds.x_train.max() <= 1.0
    assert _counts(ds.c_train, 2) == [2, 2] and _counts(ds.c_val, 2) == [1, 1]


def test_image_folder_without_class_folders(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(InputError, match="no class sub-folders"):
        load_dataset(str(tmp_path / "flat"))


def test_image_folder_with_an_empty_class(tmp_path):
    root = _image_folder(tmp_path / "imgs")
    (root / "emu").mkdir()
    with pytest.raises(InputError, match="class folder 'emu' has no images"):
        load_dataset(str(root))


# ------------------------------------------------------------------- prepared files


@pytest.mark.parametrize("spec", ["builtin:digits", "onehot"])
def test_prepared_round_trip(tmp_path, spec):
    if spec == "onehot":
        x, y = _blobs((20, 10, 10))
        spec = str(_npz(tmp_path / "oh.npz", x=x, y=np.eye(3)[y]))
    ds = load_dataset(spec, max_samples=200)
    path = tmp_path / "prepared.bin"  # no .npz suffix: saved exactly where asked
    save_prepared(ds, path)
    assert path.exists() and not (tmp_path / "prepared.bin.npz").exists()
    back = load_prepared(path)
    for name in ("x_train", "y_train", "c_train", "x_val", "y_val", "c_val"):
        a, b = getattr(ds, name), getattr(back, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert back.summary() == ds.summary()
    assert (back.class_names, back.label_format, back.source, back.n_total) == (
        ds.class_names,
        ds.label_format,
        ds.source,
        ds.n_total,
    )


def _corrupt(path: Path, how: str) -> Path:
    """A real .npz written by numpy, then broken the way a copy or a download breaks it."""
    rng = np.random.default_rng(0)
    arrays = {"x": rng.normal(size=(200, 4)), "y": rng.integers(0, 2, 200)}
    if how == "zlib":
        np.savez_compressed(path, **arrays)
    else:
        np.savez(path, **arrays)
    data = path.read_bytes()
    if how in ("truncated", "no-central-directory"):
        data = data[: len(data) // 2] if how == "truncated" else data[:-30]
    elif how in ("crc", "zlib"):
        broken = bytearray(data)
        broken[300:340] = b"\xff" * 40  # inside the first array's bytes
        data = bytes(broken)
    elif how == "text":
        data = b"x,y\n1,0\n"
    elif how == "empty":
        data = b""
    elif how == "npy":
        path.write_bytes(b"")
        with path.open("wb") as fh:
            np.save(fh, arrays["x"])
        return path
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("how", "match", "listing_breaks"), [
    ("truncated", "truncated or corrupt", True),
    ("no-central-directory", "truncated or corrupt", True),
    ("crc", "truncated or corrupt", False),  # the listing is fine, an array is not
    ("zlib", "truncated or corrupt", False),
    ("text", r"is not an \.npz archive", True),
    ("empty", "the file is empty", True),
    ("npy", r"single \.npy array, not an \.npz archive", True),
])
def test_a_truncated_or_corrupt_npz_is_an_input_error(tmp_path, how, match, listing_breaks):
    from stabcheck.inputs.readers.npz import npz_has_sample_weight

    path = _corrupt(tmp_path / "broken.npz", how)
    loads = [lambda: load_dataset(str(path))]
    if listing_breaks:  # the engine lists the arrays first (is there a sample_weight?)
        loads.append(lambda: npz_has_sample_weight(str(path)))
    for load in loads:
        with pytest.raises(InputError, match=match) as info:
            load()
        assert info.value.exit_code == 2
        assert "\n" not in str(info.value) and "broken.npz" in str(info.value)
    if not listing_breaks:
        assert npz_has_sample_weight(str(path)) is False


@pytest.mark.parametrize(("y", "values", "c"), [
    (np.array([-1, 1, 1, -1, 1, -1]), (-1, 1), [0, 1, 1, 0, 1, 0]),
    (np.array([3.0, 7.0, 3.0, 9.0, 7.0, 9.0]), (3, 7, 9), [0, 1, 0, 2, 1, 2]),
    (np.array([0, 1, 2, 1, 0, 2]), (0, 1, 2), [0, 1, 2, 1, 0, 2]),
])
def test_integer_labels_reach_the_loss_as_the_data_holds_them(tmp_path, y, values, c):
    """The loader cannot know the loss, so it does not re-encode integer labels: {-1, 1}
    stays {-1, 1} (``preflight.check_label_values`` refuses what the loss cannot take)."""
    x = np.arange(6, dtype=np.float64)
    ds = load_dataset(str(_npz(tmp_path / "d.npz", x=x, y=y)), holdout=0.0)
    order = np.argsort(ds.x_train[:, 0])
    assert ds.label_values == values
    assert ds.y_train[order].tolist() == y.astype(int).tolist()
    assert ds.c_train[order].tolist() == c
    back = tmp_path / "prepared.bin"
    save_prepared(ds, back)
    assert load_prepared(back).label_values == values


def test_labels_the_loader_encodes_have_no_label_values(tmp_path):
    x = np.arange(6, dtype=np.float64)
    strings = load_dataset(str(_npz(tmp_path / "s.npz", x=x, y=np.array(list("abcabc")))))
    onehot = load_dataset(str(_npz(tmp_path / "o.npz", x=x, y=np.eye(2)[[0, 1] * 3])))
    assert strings.label_values is None and onehot.label_values is None
    back = tmp_path / "prepared.bin"
    save_prepared(strings, back)
    assert load_prepared(back).label_values is None
    assert load_dataset("builtin:breast_cancer").label_values is None


# ------------------------------------------------------------------ rare classes


def _fraud(tmp: Path) -> Path:
    """The fraud example's shape: 284,807 rows, 492 positives (one feature each)."""
    rng = np.random.default_rng(0)
    y = np.zeros(284_807, dtype=np.int64)
    y[rng.choice(y.size, 492, replace=False)] = 1
    return _npz(tmp / "fraud.npz", x=rng.normal(size=(y.size, 1)).astype(np.float32), y=y)


def test_the_held_out_sample_keeps_enough_of_a_rare_class_in_the_datas_proportions(tmp_path):
    """At --max-samples 20,000 the proportional held-out sample of 5,000 rows left 8
    positives to judge with: it grows (within --max-samples) until the positives number
    30, in the data's proportions; the training sample is the proportional one (35)."""
    path = _fraud(tmp_path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    ds = load_dataset(str(path), seed=0)
    train, held = _counts(ds.c_train, 2), _counts(ds.c_val, 2)
    assert train == [19_965, 35]
    assert held[1] == RARE_CLASS_SAMPLES
    assert 5_000 < sum(held) <= 20_000
    assert held[1] / sum(held) == pytest.approx(98 / 56_961, rel=0.05)  # the split's share
    assert ds.holdout_pool_counts == (56_863, 98) and ds.train_pool_counts == (227_452, 394)
    assert rare_class_warning(ds) is None
    again = load_dataset(str(path), seed=0)
    assert np.array_equal(again.x_val, ds.x_val) and np.array_equal(again.x_train, ds.x_train)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # the data is only read


def test_where_max_samples_is_too_small_the_warning_says_how_to_raise_it(tmp_path):
    ds = load_dataset(str(_fraud(tmp_path)), max_samples=5_000, seed=0)
    assert sum(_counts(ds.c_val, 2)) == 5_000  # grown from 1,250, no further than 5,000
    warning = rare_class_warning(ds)
    assert warning == (
        "per-class figures (recall, F1) rest on few samples: 1 class has fewer than 30 held "
        f"out or to train on (class 1: {_counts(ds.c_val, 2)[1]} held out, "
        f"{_counts(ds.c_train, 2)[1]} to train on): --max-samples 18,000 keeps more of them")
    enough = load_dataset(str(_fraud(tmp_path)), max_samples=18_000, seed=0)
    assert min(_counts(enough.c_train, 2)[1], _counts(enough.c_val, 2)[1]) >= 30
    assert rare_class_warning(enough) is None


@pytest.mark.parametrize(("counts", "cap", "max_samples", "expected"), [
    ((56_863, 98), 5_000, 20_000, 17_438),  # 30 positives in a proportional sample
    ((56_863, 98), 1_250, 5_000, 5_000),    # no further than --max-samples
    ((900, 100), 1_000, 20_000, 1_000),     # the whole split already
    ((4_000, 1_000), 1_000, 20_000, 1_000),  # 200 of the rare class: enough
    ((9_990, 10), 1_000, 20_000, 10_000),   # the class has 10: all of them
])
def test_holdout_cap(counts, cap, max_samples, expected):
    assert _holdout_cap(np.asarray(counts), cap, max_samples) == expected


def _sampled(train: tuple[int, ...], held: tuple[int, ...], train_pool: tuple[int, ...],
             held_pool: tuple[int, ...], given: bool = False) -> Dataset:
    c_train = np.repeat(np.arange(len(train)), train)
    c_val = np.repeat(np.arange(len(held)), held)
    return Dataset(np.zeros((c_train.size, 1)), c_train, c_train, np.zeros((c_val.size, 1)),
                   c_val, c_val, tuple(str(i) for i in range(len(train))), "sparse", "d.npz",
                   sum(train_pool) + sum(held_pool), train_pool_counts=train_pool,
                   holdout_pool_counts=held_pool, holdout_given=given)


@pytest.mark.parametrize(("dataset", "expected"), [
    (_sampled((500, 40), (500, 30), (5_000, 400), (1_000, 30)), None),
    (_sampled((500, 40), (500, 30), (), ()), None),  # sampling facts unknown
    # the data holds more: --max-samples
    (_sampled((19_965, 35), (4_992, 8), (227_452, 394), (56_863, 98)),
     "per-class figures (recall, F1) rest on few samples: 1 class has fewer than 30 held out "
     "or to train on (class 1: 8 held out, 35 to train on): --max-samples 18,000 keeps more "
     "of them"),
    # the data holds no more: a larger holdout, or more data
    (_sampled((400, 12, 50), (100, 3, 12), (400, 12, 50), (100, 3, 12)),
     "per-class figures (recall, F1) rest on few samples: 2 classes have fewer than 30 held "
     "out or to train on (class 1: 3 held out, 12 to train on; class 2: 12 held out, 50 to "
     "train on): the training data holds fewer than 30 of class 1: more data; the held-out "
     "split holds fewer than 30 of classes 1, 2: a larger holdout (in the config) or more "
     "data"),
    # a held-out split the data brought
    (_sampled((400, 50), (100, 3), (400, 50), (100, 3), given=True),
     "per-class figures (recall, F1) rest on few samples: 1 class has fewer than 30 held out "
     "or to train on (class 1: 3 held out, 50 to train on): x_val holds fewer than 30 of "
     "class 1: a larger x_val"),
], ids=["enough", "unknown", "max-samples", "no-more-data", "x-val"])
def test_rare_class_warning(dataset, expected):
    assert rare_class_warning(dataset) == expected
