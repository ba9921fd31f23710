"""Tests for train.data.cifar_official: the official CIFAR-10 python-format reader."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
from builders import (
    META_NAMES,
    batch_dict,
    build_good_archive,
    make_images,
    make_official_folder,
    write_meta,
    write_pickle,
)

from cifar_edge.cli.errors import DatasetError
from cifar_edge.train.errors import UnsafeDataError
from edge_sdk.spec import CIFAR10_CLASSES
from cifar_edge.train.data.cifar_official import (
    BATCHES_DIRNAME,
    TRAIN_BATCHES,
    RestrictedUnpickler,
    extract_archive,
    find_batches_dir,
    load_batch,
    load_label_names,
    load_official_split,
    restricted_load,
)


def make_tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_info(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


class Evil:
    """An object whose unpickling would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvilExec:
    """An object whose unpickling would exec Python code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",))


# --- batches and splits -----------------------------------------------------


def test_load_batch_round_trips_channel_planar_layout(tmp_path: Path) -> None:
    images, labels = make_images(seed=7, per_class=3)
    path = write_pickle(tmp_path / "data_batch_1", batch_dict(images, labels))
    got_images, got_labels = load_batch(path)
    assert got_images.dtype == np.uint8 and got_images.shape == (30, 32, 32, 3)
    assert got_labels.dtype == np.int64 and got_labels.shape == (30,)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_images.flags["C_CONTIGUOUS"]


def test_load_batch_layout_is_r_then_g_then_b_planes(tmp_path: Path) -> None:
    # One image: red plane all 1, green all 2, blue all 3 -> every pixel is (1, 2, 3).
    row = np.concatenate([np.full(1024, v, np.uint8) for v in (1, 2, 3)])[None, :]
    path = write_pickle(tmp_path / "b", {b"data": row, b"labels": [4]})
    images, labels = load_batch(path)
    assert images.shape == (1, 32, 32, 3)
    assert (images[0] == np.array([1, 2, 3], np.uint8)).all()
    assert labels.tolist() == [4]


def test_load_batch_accepts_str_keys(tmp_path: Path) -> None:
    images, labels = make_images(seed=3, per_class=1)
    obj = {"data": images.transpose(0, 3, 1, 2).reshape(10, 3072), "labels": labels.tolist()}
    got_images, got_labels = load_batch(write_pickle(tmp_path / "b", obj))
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_load_batch_accepts_legacy_numpy_core_global(tmp_path: Path) -> None:
    # Pickles written by numpy < 2 reference numpy.core.multiarray._reconstruct.
    images, labels = make_images(seed=4, per_class=1)
    raw = pickle.dumps(batch_dict(images, labels), protocol=2)
    legacy = raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert legacy != raw
    path = tmp_path / "b"
    path.write_bytes(legacy)
    got_images, _ = load_batch(path)
    np.testing.assert_array_equal(got_images, images)


def python2_batch_pickle(data: bytes, n: int, labels: list[int]) -> bytes:
    """Hand-written protocol-2 pickle as Python 2 + numpy 1 wrote the official batches.

    Python 2 ``str`` values are SHORT_BINSTRING/BINSTRING opcodes (bytes under
    ``encoding="bytes"``) and numpy is referenced as ``numpy.core.multiarray``.
    """

    def short(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b

    label_ops = b"".join(b"K" + bytes([x]) for x in labels)
    return (
        b"\x80\x02}q\x00("
        + short(b"data")
        + b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
        + short(b"b")
        + b"\x87R"
        + b"(K\x01M" + struct.pack("<H", n) + b"M\x00\x0c\x86"
        + b"cnumpy\ndtype\n" + short(b"u1") + b"K\x00K\x01\x87R"
        + b"(K\x03" + short(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        + b"\x89T" + struct.pack("<I", len(data)) + data + b"tb"
        + short(b"labels") + b"](" + label_ops + b"e"
        + short(b"batch_label") + short(b"testing batch 1 of 1")
        + b"u."
    )


def test_load_batch_reads_python2_pickle(tmp_path: Path) -> None:
    images, labels = make_images(seed=5, per_class=1)
    data = images.transpose(0, 3, 1, 2).reshape(10, 3072).tobytes()
    path = tmp_path / "test_batch"
    path.write_bytes(python2_batch_pickle(data, 10, labels.tolist()))
    got_images, got_labels = load_batch(path)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_load_official_split_train_and_test(tmp_path: Path) -> None:
    folder, originals = make_official_folder(tmp_path)
    images, labels, names = load_official_split(folder, "train")
    want_images = np.concatenate([originals[n][0] for n in TRAIN_BATCHES])
    want_labels = np.concatenate([originals[n][1] for n in TRAIN_BATCHES])
    np.testing.assert_array_equal(images, want_images)
    np.testing.assert_array_equal(labels, want_labels)
    assert names == tuple(n.decode() for n in META_NAMES)

    # The parent folder works too.
    t_images, t_labels, _ = load_official_split(tmp_path, "test")
    np.testing.assert_array_equal(t_images, originals["test_batch"][0])
    np.testing.assert_array_equal(t_labels, originals["test_batch"][1])


def test_load_official_split_unknown_split(tmp_path: Path) -> None:
    folder, _ = make_official_folder(tmp_path)
    with pytest.raises(DatasetError, match="valid splits.*'train'.*'test'"):
        load_official_split(folder, "validation")


def test_load_official_split_names_missing_batches(tmp_path: Path) -> None:
    folder, _ = make_official_folder(tmp_path)
    (folder / "data_batch_3").unlink()
    (folder / "data_batch_5").unlink()
    with pytest.raises(DatasetError) as info:
        load_official_split(folder, "train")
    assert "data_batch_3" in str(info.value) and "data_batch_5" in str(info.value)
    assert "data_batch_1" not in str(info.value)


def test_load_official_split_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_official_split(tmp_path / "nope", "test")


def test_label_names_from_meta_and_fallback(tmp_path: Path) -> None:
    write_meta(tmp_path, [b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h", b"i", b"j"])
    assert load_label_names(tmp_path) == tuple("abcdefghij")
    (tmp_path / "batches.meta").unlink()
    assert load_label_names(tmp_path) == CIFAR10_CLASSES


def test_label_names_wrong_count(tmp_path: Path) -> None:
    write_meta(tmp_path, [b"a", b"b"])
    with pytest.raises(DatasetError, match="2 label names"):
        load_label_names(tmp_path)


def test_find_batches_dir(tmp_path: Path) -> None:
    assert find_batches_dir(tmp_path) is None
    folder = tmp_path / BATCHES_DIRNAME
    folder.mkdir()
    assert find_batches_dir(tmp_path) is None
    (folder / "test_batch").write_bytes(b"")
    assert find_batches_dir(tmp_path) == folder
    assert find_batches_dir(folder) == folder
    assert find_batches_dir(str(folder)) == folder


# --- malformed batches -------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1, 2, 3], "not a dict"),
        ({b"labels": [0]}, "no 'data'"),
        ({b"data": np.zeros((1, 3072), np.uint8)}, "no 'labels'"),
        ({b"data": b"\x00" * 3072, b"labels": [0]}, "not a numpy array"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "dtype float32"),
        ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, r"shape \(2, 3000\)"),
        ({b"data": np.zeros((2, 32, 32, 3), np.uint8), b"labels": [0, 1]}, "shape"),
        ({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, "no images"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "1 labels for 2 images"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "label 10 is out"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, -1]}, "label -1 is out"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1.0]}, "not an int"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, True]}, "not an int"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": "ab"}, "not a list"),
    ],
)
def test_load_batch_rejects_malformed(tmp_path: Path, obj: object, message: str) -> None:
    path = write_pickle(tmp_path / "data_batch_1", obj)
    with pytest.raises(DatasetError, match=message) as info:
        load_batch(path)
    assert str(path) in str(info.value)
    assert not isinstance(info.value, UnsafeDataError)


def test_load_batch_rejects_object_dtype_array(tmp_path: Path) -> None:
    data = np.empty((1, 3072), dtype=object)
    data[...] = 0
    path = write_pickle(tmp_path / "b", {b"data": data, b"labels": [0]})
    with pytest.raises(DatasetError, match="object|not allowed"):
        load_batch(path)


def test_load_batch_truncated_pickle(tmp_path: Path) -> None:
    images, labels = make_images(seed=1)
    raw = pickle.dumps(batch_dict(images, labels), protocol=2)
    path = tmp_path / "data_batch_1"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError) as info:
        load_batch(path)
    assert str(path) in str(info.value)
    assert not isinstance(info.value, UnsafeDataError)


def test_load_batch_garbage_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"this is not a pickle")
    with pytest.raises(DatasetError, match="data_batch_1"):
        load_batch(path)
    with pytest.raises(DatasetError, match="not found"):
        load_batch(tmp_path / "absent")


# --- unsafe pickles -----------------------------------------------------------


@pytest.mark.parametrize("evil_class", [Evil, EvilExec])
def test_malicious_reduce_is_refused_and_not_run(tmp_path: Path, evil_class: type) -> None:
    marker = tmp_path / "MARKER"
    path = write_pickle(
        tmp_path / "data_batch_1",
        {b"data": np.zeros((1, 3072), np.uint8), b"labels": [evil_class(marker)]},
    )
    with pytest.raises(UnsafeDataError) as info:
        load_batch(path)
    message = str(info.value)
    assert ("system" in message) or ("exec" in message)
    assert str(path) in message
    assert not marker.exists()


def test_restricted_load_refuses_plain_globals() -> None:
    raw = pickle.dumps({b"x": Path("/tmp")}, protocol=2)
    with pytest.raises(UnsafeDataError, match="pathlib.PosixPath|pathlib.Path|pathlib"):
        restricted_load(io.BytesIO(raw), source="thing.pkl")


def test_restricted_load_refuses_persistent_id() -> None:
    raw = b"\x80\x02Pfoo\n."  # PERSID 'foo', STOP
    with pytest.raises(UnsafeDataError, match="persistent"):
        restricted_load(io.BytesIO(raw), source="p.pkl")


def test_restricted_load_refuses_other_codecs() -> None:
    # _codecs.encode('abc', 'rot13'): only latin-1 (what protocol 2 uses for bytes) is allowed.
    raw = b"c_codecs\nencode\n(Vabc\nVrot13\ntR."
    with pytest.raises(UnsafeDataError, match="latin-1"):
        restricted_load(io.BytesIO(raw), source="c.pkl")


def test_restricted_load_allows_only_empty_bytes_call() -> None:
    assert restricted_load(io.BytesIO(pickle.dumps(b"", protocol=2))) == b""
    raw = b"c__builtin__\nbytes\n(I1000\ntR."  # bytes(1000)
    with pytest.raises(UnsafeDataError, match="bytes"):
        restricted_load(io.BytesIO(raw), source="b.pkl")


def test_restricted_load_names_source_on_bad_pickle() -> None:
    with pytest.raises(DatasetError, match="broken.pkl"):
        restricted_load(io.BytesIO(b"\x80\x02}q\x00"), source="broken.pkl")


def test_restricted_unpickler_loads_plain_arrays() -> None:
    arr = np.arange(12, dtype=np.int16).reshape(3, 4)
    out = RestrictedUnpickler(io.BytesIO(pickle.dumps(arr, protocol=2))).load()
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == np.int16


# --- archives -----------------------------------------------------------------


def test_extract_good_archive_and_load(tmp_path: Path) -> None:
    archive, originals = build_good_archive(tmp_path)
    dest = tmp_path / "dest"
    folder = extract_archive(archive, dest)
    assert folder == dest / BATCHES_DIRNAME
    images, labels, names = load_official_split(folder, "train")
    np.testing.assert_array_equal(images[:20], originals["data_batch_1"][0])
    np.testing.assert_array_equal(labels[-20:], originals["data_batch_5"][1])
    assert names == tuple(n.decode() for n in META_NAMES)
    # No temporary folders are left behind.
    assert sorted(p.name for p in dest.iterdir()) == [BATCHES_DIRNAME]


def test_extract_archive_reuses_existing_folder(tmp_path: Path) -> None:
    archive, _ = build_good_archive(tmp_path)
    dest = tmp_path / "dest"
    folder = extract_archive(archive, dest)
    sentinel = folder / "sentinel"
    sentinel.write_text("kept")
    archive.write_bytes(b"corrupt now")  # would fail if it were extracted again
    assert extract_archive(archive, dest) == folder
    assert sentinel.read_text() == "kept"


def test_extract_archive_parent_traversal_refused(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    archive = make_tar(
        tmp_path / "evil.tar.gz",
        [
            file_info(f"{BATCHES_DIRNAME}/test_batch", b"x"),
            file_info(f"{BATCHES_DIRNAME}/../../evil.txt", b"pwned"),
        ],
    )
    with pytest.raises(UnsafeDataError, match=r"\.\./\.\./evil\.txt"):
        extract_archive(archive, dest)
    assert not (tmp_path / "evil.txt").exists()
    assert not (dest / "evil.txt").exists()
    assert list(dest.iterdir()) == []


def test_extract_archive_absolute_path_refused(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    target = tmp_path / "absolute-target.txt"
    archive = make_tar(tmp_path / "abs.tar.gz", [file_info(str(target), b"pwned")])
    with pytest.raises(UnsafeDataError, match="absolute"):
        extract_archive(archive, dest)
    assert not target.exists()
    assert not dest.exists() or list(dest.iterdir()) == []


def test_extract_archive_symlink_refused(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    outside = tmp_path / "outside"
    outside.mkdir()
    link = tarfile.TarInfo(BATCHES_DIRNAME)
    link.type = tarfile.SYMTYPE
    link.linkname = str(outside)
    archive = make_tar(
        tmp_path / "link.tar.gz",
        [(link, None), file_info(f"{BATCHES_DIRNAME}/test_batch", b"x")],
    )
    with pytest.raises(UnsafeDataError, match="link"):
        extract_archive(archive, dest)
    assert not (outside / "test_batch").exists()
    assert not (dest / BATCHES_DIRNAME).exists()
    assert not (dest / BATCHES_DIRNAME).is_symlink()


def test_extract_archive_hardlink_and_device_refused(tmp_path: Path) -> None:
    hard = tarfile.TarInfo(f"{BATCHES_DIRNAME}/test_batch")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "/etc/passwd"
    with pytest.raises(UnsafeDataError, match="link"):
        extract_archive(make_tar(tmp_path / "h.tar.gz", [(hard, None)]), tmp_path / "d1")
    fifo = tarfile.TarInfo(f"{BATCHES_DIRNAME}/test_batch")
    fifo.type = tarfile.FIFOTYPE
    with pytest.raises(UnsafeDataError, match="fifo"):
        extract_archive(make_tar(tmp_path / "f.tar.gz", [(fifo, None)]), tmp_path / "d2")


def test_extract_archive_without_batches_folder(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "other.tar.gz", [file_info("something/else.txt", b"hi")])
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError, match=BATCHES_DIRNAME):
        extract_archive(archive, dest)
    assert not (dest / BATCHES_DIRNAME).exists()
    assert list(dest.iterdir()) == []  # temporary folder cleaned up


def test_extract_archive_incomplete_batches_folder(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "part.tar.gz", [file_info(f"{BATCHES_DIRNAME}/test_batch", b"x")])
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError, match="data_batch_1"):
        extract_archive(archive, dest)
    assert not (dest / BATCHES_DIRNAME).exists()


def test_extract_corrupt_archive(tmp_path: Path) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError) as info:
        extract_archive(archive, dest)
    assert str(archive) in str(info.value)
    assert not isinstance(info.value, UnsafeDataError)
    assert not (dest / BATCHES_DIRNAME).exists()
    assert list(dest.iterdir()) == []


def test_extract_truncated_archive(tmp_path: Path) -> None:
    archive, _ = build_good_archive(tmp_path)
    raw = archive.read_bytes()
    archive.write_bytes(raw[: len(raw) // 2])
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError, match="cifar-10-python.tar.gz"):
        extract_archive(archive, dest)
    assert list(dest.iterdir()) == []


def test_extract_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        extract_archive(tmp_path / "absent.tar.gz", tmp_path / "dest")
