"""Image-folder data sets: the real CIFAR-10 tree, bad files, class order, the decoded cache."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from builders import make_image_tree
from PIL import Image

from cifar_edge.cli.errors import DatasetError
from edge_sdk.spec import CIFAR10_CLASSES
from cifar_edge.train.data import load_split, train_val_split
from cifar_edge.train.data.image_folder import discover_classes, load_image_folder_split
from cifar_edge.train.data.splits import stratified_indices


@pytest.mark.parametrize("split, total, per_class", [("train", 50_000, 5_000), ("test", 10_000, 1_000)])
def test_shared_tree_loads_in_full(cifar10_dir, session_cache, split, total, per_class):
    data = load_split(split, cifar10_dir, cache_dir=session_cache)
    assert data.images.shape == (total, 32, 32, 3)
    assert data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64
    assert data.class_names == CIFAR10_CLASSES
    assert set(data.class_counts().values()) == {per_class}
    assert data.skipped == ()
    # real photographs, not a constant fill
    assert data.images.min() == 0 and data.images.max() == 255
    assert 100 < data.images.mean() < 140


def test_shared_tree_second_load_comes_from_cache_identically(cifar10_dir, session_cache):
    first = load_split("test", cifar10_dir, cache_dir=session_cache)
    second = load_split("test", cifar10_dir, cache_dir=session_cache)
    assert second.from_cache
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.content_sha256() == second.content_sha256()  # decoded or cached: the same content


def test_content_hash_follows_pixels_labels_and_class_names(tmp_path):
    from dataclasses import replace

    from cifar_edge.train.data import ImageSet

    rng = np.random.default_rng(0)
    base = ImageSet(rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8), np.arange(6) % 3, ("a", "b", "c"),
                    "train", "here")
    same_elsewhere = replace(base, images=base.images.copy(), source="image-folder /other/place", split="x")
    assert base.content_sha256() == same_elsewhere.content_sha256() and len(base.content_sha256()) == 64
    one_pixel = base.images.copy()
    one_pixel[5, 31, 31, 2] ^= 1
    changes = [replace(base, images=one_pixel), replace(base, labels=(np.arange(6) + 1) % 3),
               replace(base, class_names=("a", "c", "b"))]
    assert len({base.content_sha256(), *(c.content_sha256() for c in changes)}) == 4


def test_pixels_match_direct_decode(cifar10_dir, session_cache):
    data = load_split("test", cifar10_dir, cache_dir=session_cache)
    cat = CIFAR10_CLASSES.index("cat")
    path = cifar10_dir / "test" / "cat" / sorted(os.listdir(cifar10_dir / "test" / "cat"))[0]
    expected = np.asarray(Image.open(path).convert("RGB"))
    first_cat = int(np.flatnonzero(data.labels == cat)[0])
    np.testing.assert_array_equal(data.images[first_cat], expected)


def test_bad_files_are_reported_and_skipped(tmp_path, caplog):
    written = make_image_tree(tmp_path, per_class=3)
    bird = tmp_path / "train" / "bird"
    good_jpeg = bird / "good.jpg"
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(good_jpeg, quality=95)
    (bird / "corrupt.jpg").write_bytes(good_jpeg.read_bytes()[:60])  # truncated JPEG
    (bird / "empty.jpg").write_bytes(b"")
    (bird / "notes.png").write_text("this is not a picture")
    (bird / "readme.txt").write_text("ignored: not an image extension")

    with caplog.at_level(logging.WARNING):
        data = load_image_folder_split(tmp_path, "train")
    assert len(data) == len(written["train"]) + 1  # the 9 PNGs and good.jpg
    skipped = {Path(s.path).name: s.reason for s in data.skipped}
    assert set(skipped) == {"corrupt.jpg", "empty.jpg", "notes.png"}
    assert "empty" in skipped["empty.jpg"]
    assert "cannot decode" in skipped["notes.png"]
    assert "skipped 3 unreadable" in caplog.text
    # good images decoded exactly (PNG is lossless)
    for path, pixels, label in written["train"]:
        idx = [i for i in range(len(data)) if data.labels[i] == label]
        assert any(np.array_equal(data.images[i], pixels) for i in idx), path


def test_other_sizes_and_modes_become_rgb_32(tmp_path):
    for split in ("train",):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
    Image.new("L", (64, 48), 90).save(tmp_path / "train" / "a" / "gray.png")
    Image.new("RGBA", (10, 10), (10, 20, 30, 128)).save(tmp_path / "train" / "a" / "rgba.png")
    Image.new("RGB", (100, 100), (200, 100, 50)).convert("P").save(tmp_path / "train" / "b" / "palette.png")
    Image.new("RGB", (33, 31), (1, 2, 3)).save(tmp_path / "train" / "b" / "odd.webp", lossless=True)
    Image.new("RGB", (32, 32), (7, 8, 9)).save(tmp_path / "train" / "b" / "plain.bmp")
    data = load_image_folder_split(tmp_path, "train")
    assert data.images.shape == (5, 32, 32, 3) and data.skipped == ()
    assert data.class_names == ("a", "b")
    np.testing.assert_array_equal(data.images[0], np.full((32, 32, 3), 90))
    np.testing.assert_array_equal(data.images[1][0, 0], [10, 20, 30])
    # class b in file-name order: odd.webp, palette.png, plain.bmp
    np.testing.assert_array_equal(data.images[2][5, 5], [1, 2, 3])
    palette_pixel = data.images[3][5, 5].astype(int)
    assert np.abs(palette_pixel - [200, 100, 50]).max() <= 8  # web palette quantization
    np.testing.assert_array_equal(data.images[4][5, 5], [7, 8, 9])


def test_class_order_sorted_explicit_or_official(tmp_path):
    make_image_tree(tmp_path / "custom", classes=("zebra", "apple", "mango"), per_class=1)
    assert discover_classes(tmp_path / "custom") == ("apple", "mango", "zebra")
    assert discover_classes(tmp_path / "custom", ["zebra", "mango", "apple", "kiwi"]) == ("zebra", "mango", "apple", "kiwi")
    with pytest.raises(DatasetError, match="not among the given class names: zebra"):
        discover_classes(tmp_path / "custom", ["apple", "mango"])
    # CIFAR-10 folder names take the official order, not alphabetical
    make_image_tree(tmp_path / "cifar", classes=tuple(sorted(CIFAR10_CLASSES)), per_class=1)
    assert discover_classes(tmp_path / "cifar") == CIFAR10_CLASSES
    data = load_image_folder_split(tmp_path / "cifar", "test")
    assert data.labels.tolist() == list(range(10))  # one per class, official indices


def test_cache_invalidated_when_a_file_changes(tmp_path):
    make_image_tree(tmp_path / "d", per_class=2)
    cache = tmp_path / "cache"
    first = load_image_folder_split(tmp_path / "d", "train", cache_dir=cache)
    assert not first.from_cache
    assert load_image_folder_split(tmp_path / "d", "train", cache_dir=cache).from_cache
    changed = tmp_path / "d" / "train" / "bird" / "0000.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(changed)
    os.utime(changed, ns=(1, 1))
    third = load_image_folder_split(tmp_path / "d", "train", cache_dir=cache)
    assert not third.from_cache
    assert (third.images == 0).all(axis=(1, 2, 3)).sum() == 1
    (tmp_path / "d" / "train" / "automobile" / "0001.png").unlink()
    fourth = load_image_folder_split(tmp_path / "d", "train", cache_dir=cache)
    assert not fourth.from_cache and len(fourth) == len(third) - 1


def test_corrupt_cache_file_is_ignored(tmp_path):
    make_image_tree(tmp_path / "d", per_class=2)
    cache = tmp_path / "cache"
    load_image_folder_split(tmp_path / "d", "test", cache_dir=cache)
    (cache_file,) = (cache / "decoded").glob("test-*.npz")
    cache_file.write_bytes(b"garbage")
    again = load_image_folder_split(tmp_path / "d", "test", cache_dir=cache)
    assert not again.from_cache and len(again) == 6


@pytest.mark.parametrize(
    "layout, fragment",
    [
        ({}, "at least 2 class folders"),
        ({"train/only": 1}, "found only 'only'"),
        ({"train/a": 0, "train/b": 0}, "no image files"),
    ],
)
def test_unusable_trees_raise_dataset_error(tmp_path, layout, fragment):
    (tmp_path / "train").mkdir()
    for folder, n in layout.items():
        (tmp_path / folder).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (32, 32)).save(tmp_path / folder / f"{i}.png")
    with pytest.raises(DatasetError, match=fragment):
        load_image_folder_split(tmp_path, "train")


def test_all_files_bad_is_an_error(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "train" / name).mkdir(parents=True)
        (tmp_path / "train" / name / "x.jpg").write_text("nope")
    with pytest.raises(DatasetError, match="none of the 2 image files"):
        load_image_folder_split(tmp_path, "train")


def test_unknown_split_lists_available(tmp_path):
    make_image_tree(tmp_path, per_class=1)
    with pytest.raises(DatasetError, match=r"no split 'val'.*available: test, train"):
        load_image_folder_split(tmp_path, "val")


def test_stratified_split_is_seeded_and_balanced(cifar10_dir, session_cache):
    data = load_split("train", cifar10_dir, cache_dir=session_cache)
    train, val = train_val_split(data, 5000, seed=1)
    assert len(train) == 45_000 and len(val) == 5_000
    assert set(val.class_counts().values()) == {500}
    assert set(train.class_counts().values()) == {4500}
    again = stratified_indices(data.labels, 5000, seed=1)
    other = stratified_indices(data.labels, 5000, seed=2)
    np.testing.assert_array_equal(again, stratified_indices(data.labels, 5000, seed=1))
    assert not np.array_equal(again, other)
    # disjoint: no validation image is also a training image
    assert len(np.intersect1d(again, np.setdiff1d(np.arange(len(data)), again))) == 0


def test_stratified_quotas_add_up_for_uneven_classes():
    labels = np.array([0] * 7 + [1] * 2 + [2] * 1)
    idx = stratified_indices(labels, 5, seed=0)
    assert len(idx) == 5 and len(set(idx.tolist())) == 5
    counts = np.bincount(labels[idx], minlength=3)
    assert counts.tolist() in ([4, 1, 0], [3, 1, 1])
    with pytest.raises(DatasetError, match="cannot draw 11"):
        stratified_indices(labels, 11)


def test_sources_load_at_the_specs_size_with_the_sdks_resize(tmp_path):
    from builders import make_official_folder

    from edge_sdk.images import load_image
    from edge_sdk.resize import resize_pixels
    from edge_sdk.spec import PreprocessSpec
    from cifar_edge.train.data.sources import locate

    written = make_image_tree(tmp_path / "tree", per_class=2, size=(40, 24))  # tall pictures
    spec = PreprocessSpec(input_height=16, input_width=16, resize="center-crop")
    folder = locate(tmp_path / "tree", "--data", tmp_path / "cache")
    data = folder.load("test", spec=spec)
    assert data.images.shape == (6, 16, 16, 3)
    by_file = {Path(path).name + str(label): load_image(path, 16, 16, "center-crop") for path, _, label in written["test"]}
    for image, label, (path, _, _) in zip(data.images, data.labels, sorted(written["test"], key=lambda e: (e[2], e[0].name))):
        np.testing.assert_array_equal(image, by_file[path.name + str(label)])
    stretched = folder.load("test", spec=PreprocessSpec(input_height=16, input_width=16))
    assert not np.array_equal(stretched.images, data.images)  # the resize mode is honoured, not assumed
    assert folder.load("test").images.shape[1:3] == (32, 32)  # the default spec: CIFAR-10's size

    batches, originals = make_official_folder(tmp_path / "official")
    official = locate(batches, "--data", tmp_path / "cache").load("test", spec=spec)
    (images, _), = [v for k, v in originals.items() if k == "test_batch"]
    np.testing.assert_array_equal(official.images, np.stack([resize_pixels(i, 16, 16, "center-crop")
                                                              for i in images]))
