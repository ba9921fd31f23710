"""Where data comes from: --data > $CIFAR10_DIR > cache > download (over loopback only)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
from builders import build_good_archive, make_image_tree, make_official_folder

from cifar_edge.cli.errors import DatasetError
from cifar_edge.train.data import load_split, resolve_source
from cifar_edge.train.data.cifar_official import TEST_BATCHES


@pytest.fixture
def archive_server(tmp_path):
    """Serve a tiny official-format archive from a folder on 127.0.0.1; yield (url, md5, originals, hits)."""
    served = tmp_path / "served"
    served.mkdir()
    archive, originals = build_good_archive(served)
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{archive.name}"
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    yield url, md5, originals, hits
    server.shutdown()
    server.server_close()


def test_download_when_nothing_else_is_found(tmp_path, archive_server):
    url, md5, originals, hits = archive_server
    cache = tmp_path / "cache"
    source = resolve_source(None, env={}, cache_dir=cache, url=url, md5=md5, progress=False)
    assert source.origin == "download" and source.kind == "official"
    assert (cache / "cifar-10-python.tar.gz").is_file()
    test = source.load("test")
    np.testing.assert_array_equal(test.images, originals[TEST_BATCHES[0]][0])
    assert hits == ["/cifar-10-python.tar.gz"]
    # the next resolution finds the cache and does not download again
    again = resolve_source(None, env={}, cache_dir=cache, url=url, md5=md5, progress=False)
    assert again.origin == "cache" and hits == ["/cifar-10-python.tar.gz"]
    assert len(again.load("train")) == 5 * 20


def test_data_option_beats_environment_beats_cache(tmp_path):
    make_image_tree(tmp_path / "option", per_class=1)
    make_image_tree(tmp_path / "env", per_class=2)
    make_official_folder(tmp_path / "cache")
    env = {"CIFAR10_DIR": str(tmp_path / "env")}
    chosen = resolve_source(tmp_path / "option", env=env, cache_dir=tmp_path / "cache", download=False)
    assert (chosen.origin, chosen.path) == ("--data", tmp_path / "option")
    chosen = resolve_source(None, env=env, cache_dir=tmp_path / "cache", download=False)
    assert (chosen.origin, chosen.path) == ("$CIFAR10_DIR", tmp_path / "env")
    chosen = resolve_source(None, env={}, cache_dir=tmp_path / "cache", download=False)
    assert (chosen.origin, chosen.kind) == ("cache", "official")


def test_environment_variable_is_read_by_load_split(tmp_path, monkeypatch):
    make_image_tree(tmp_path / "env", per_class=2)
    monkeypatch.setenv("CIFAR10_DIR", str(tmp_path / "env"))
    data = load_split("train", cache_dir=tmp_path / "cache", download=False)
    assert len(data) == 6 and data.source == str(tmp_path / "env" / "train")


def test_archive_given_as_data_is_extracted_into_the_cache(tmp_path):
    archive, originals = build_good_archive(tmp_path)
    cache = tmp_path / "cache"
    source = resolve_source(archive, env={}, cache_dir=cache)
    assert source.kind == "official" and cache in source.path.parents
    np.testing.assert_array_equal(source.load("test").labels, originals[TEST_BATCHES[0]][1])
    assert not list(cache.rglob("*.part")) and not list(cache.rglob(".cifar-extract-*"))


def test_no_data_and_no_download_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match=r"no CIFAR-10 data found: pass --data PATH, set \$CIFAR10_DIR"):
        resolve_source(None, env={}, cache_dir=tmp_path / "empty", download=False)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: (p / "x.txt").write_text("hi") and p / "x.txt", "not a .tar.gz archive"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no data set recognized"),
    ],
)
def test_bad_data_paths_are_named(tmp_path, make, fragment):
    path = make(tmp_path)
    with pytest.raises(DatasetError, match=fragment) as info:
        resolve_source(path, env={}, cache_dir=tmp_path / "cache")
    assert str(path) in str(info.value)


def test_bad_environment_path_does_not_fall_back(tmp_path, archive_server):
    url, md5, _, hits = archive_server
    with pytest.raises(DatasetError, match=r"from \$CIFAR10_DIR"):
        resolve_source(None, env={"CIFAR10_DIR": str(tmp_path / "nope")}, cache_dir=tmp_path / "c", url=url, md5=md5)
    assert hits == []


def test_official_format_refuses_other_class_names(tmp_path):
    make_official_folder(tmp_path)
    source = resolve_source(tmp_path, env={}, cache_dir=tmp_path / "cache")
    with pytest.raises(DatasetError, match="cannot be imposed"):
        source.load("test", class_names=["a", "b"])


def test_splits_listed_per_format(tmp_path):
    make_image_tree(tmp_path / "tree", per_class=1)
    make_official_folder(tmp_path / "official")
    assert resolve_source(tmp_path / "tree", env={}).splits() == ["test", "train"]
    assert resolve_source(tmp_path / "official", env={}).splits() == ["train", "test"]


def test_shared_tree_is_recognized(cifar10_dir: Path):
    source = resolve_source(cifar10_dir, env={})
    assert source.kind == "image-folder" and set(source.splits()) >= {"train", "test"}
