"""cifar-edge serve: the HTTP API through Starlette's in-process client, the settings' bind and auth rules,
the command line, and the stream hub's resilience to bad frames and lost sources."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from cifar_edge.camera_demo.sources import Frame, FrameSource, SourceSpec
from cifar_edge.camera_demo.web.app import create_app
from cifar_edge.camera_demo.web.settings import MIN_TOKEN_LENGTH, ServeSettings, is_loopback
from cifar_edge.camera_demo.web.stream import StreamHub
from edge_sdk import Classifier
from cifar_edge.cli.main import main
from edge_sdk.errors import InferenceError
from cifar_edge.cli.errors import SourceError
from waiting import wait_for

TOKEN = "t0ken-for-the-tests-0123456789"


@pytest.fixture(scope="module")
def clf() -> Classifier:
    with Classifier("edge") as c:
        yield c


@pytest.fixture(scope="module")
def pictures(cifar10_dir) -> dict[str, bytes]:
    """One real CIFAR-10 test JPEG per class, by class name."""
    return {d.name: sorted(d.glob("*.jpg"))[0].read_bytes() for d in sorted((cifar10_dir / "test").iterdir())}


def client_for(clf: Classifier, **settings) -> TestClient:
    return TestClient(create_app(clf, ServeSettings(**settings)), raise_server_exceptions=False,
                      base_url="http://127.0.0.1:8000")  # a trusted Host (the default bind address)


@pytest.fixture(scope="module")
def api(clf) -> TestClient:
    with client_for(clf) as c:
        yield c


def assert_error(response, status: int, code: str) -> dict:
    """A refusal: the status, JSON with the code and a message, never a trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


# --------------------------------------------------------------------------- endpoints
def test_healthz_and_model(api, clf):
    assert api.get("/healthz").json() == {"status": "ok", "stream": None}
    model = api.get("/v1/model").json()
    assert model["labels"] == list(clf.labels)
    assert model["name"] == clf.model_name and model["file"] == clf.model_path.name  # never the server's path
    assert str(clf.model_path.parent) not in str(model)
    assert model["preprocessing"] == clf.spec.to_dict()
    assert model["backend"] == clf.backend_name


def test_classify_raw_bytes_and_multipart_agree_with_the_sdk(api, clf, pictures):
    for name, data in list(pictures.items())[:4]:
        expected = clf.classify(data)
        raw = api.post("/v1/classify", content=data, headers={"Content-Type": "image/jpeg"})
        form = api.post("/v1/classify", files={"image": (f"{name}.jpg", data, "image/jpeg")})
        octet = api.post("/v1/classify", content=data, headers={"Content-Type": "application/octet-stream"})
        for response in (raw, form, octet):
            assert response.status_code == 200, response.text
            body = response.json()
            assert [(c["label"], c["index"]) for c in body["categories"]] == \
                   [(c.label, c.index) for c in expected.categories]
            assert [c["score"] for c in body["categories"]] == pytest.approx([c.score for c in expected.categories])
            assert len(body["categories"]) == 3
            assert body["bytes"] == len(data)
            timing = body["timing_ms"]
            assert set(timing) == {"preprocess", "inference", "postprocess", "total", "request"}
            assert timing["request"] >= timing["inference"] > 0


def test_top_k_per_request(api, clf, pictures):
    expected = clf.classify(pictures["frog"], top_k=10)
    body = api.post("/v1/classify?top_k=10", content=pictures["frog"], headers={"Content-Type": "image/jpeg"}).json()
    assert [c["label"] for c in body["categories"]] == [c.label for c in expected.categories]
    assert len(body["categories"]) == 10
    for bad in ("0", "11", "-1", "three", "1e3", "9" * 40):
        response = api.post(f"/v1/classify?top_k={bad}", content=pictures["frog"], headers={"Content-Type": "image/jpeg"})
        assert_error(response, 400, "bad_parameter")


def test_a_form_file_under_another_field_name_is_taken(api, pictures):
    response = api.post("/v1/classify", files={"picture": ("x.jpg", pictures["cat"], "image/jpeg")})
    assert response.status_code == 200 and response.json()["categories"]


def test_bad_requests_are_json_errors(api):
    assert_error(api.post("/v1/classify", content=b"not a picture", headers={"Content-Type": "image/jpeg"}),
                 400, "invalid_image")
    assert_error(api.post("/v1/classify", content=b"", headers={"Content-Type": "image/png"}), 400, "invalid_image")
    png_header_only = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    assert_error(api.post("/v1/classify", content=png_header_only, headers={"Content-Type": "image/png"}),
                 400, "invalid_image")
    for content_type in ("text/plain", "application/json", "application/x-www-form-urlencoded"):
        body = assert_error(api.post("/v1/classify", content=b"abc", headers={"Content-Type": content_type}),
                            415, "unsupported_media_type")
        assert "image/jpeg" in body["error"]["message"]
    assert_error(api.post("/v1/classify", content=b"abc"), 415, "unsupported_media_type")  # no Content-Type
    assert_error(api.post("/v1/classify", data={"text": "no file"}, files={}), 415, "unsupported_media_type")
    assert_error(api.post("/v1/classify", files={"notes": (None, "text only")}), 400, "bad_form")
    broken = b"--xyz\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\nabc"
    assert_error(api.post("/v1/classify", content=broken, headers={"Content-Type": "multipart/form-data; boundary=xyz"}),
                 400, "bad_form")  # a truncated form
    assert_error(api.get("/no/such/path"), 404, "not_found")
    assert_error(api.get("/v1/classify"), 405, "method_not_allowed")
    assert_error(api.post("/v1/model"), 405, "method_not_allowed")
    assert_error(api.get("/v1/stream"), 404, "no_stream")
    assert_error(api.get("/stream.mjpg"), 404, "no_stream")


def test_uploads_over_the_limit_are_refused_declared_or_streamed(clf, pictures):
    data = pictures["ship"]
    with client_for(clf, max_upload_bytes=len(data) - 1) as c:
        body = assert_error(c.post("/v1/classify", content=data, headers={"Content-Type": "image/jpeg"}),
                            413, "too_large")
        assert f"{len(data) - 1:,} bytes" in body["error"]["message"]

        def chunks():  # no Content-Length: counted while it arrives
            for i in range(0, len(data), 100):
                yield data[i:i + 100]

        assert_error(c.post("/v1/classify", content=chunks(), headers={"Content-Type": "image/jpeg"}), 413, "too_large")
        assert_error(c.post("/v1/classify", files={"image": ("a.jpg", data, "image/jpeg")}), 413, "too_large")
    with client_for(clf, max_upload_bytes=len(data)) as c:  # exactly the limit passes
        assert c.post("/v1/classify", content=data, headers={"Content-Type": "image/jpeg"}).status_code == 200


def test_security_headers_and_the_page(api):
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'sha256-" in csp and "unsafe-inline" not in csp
    html = page.text
    assert 'id="stream"' in html and 'enctype="multipart/form-data"' in html and 'name="image"' in html
    assert "//SCRIPT" not in html and "/*STYLE*/" not in html  # inlined
    for response in (page, api.get("/healthz"), api.get("/nope")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"


# --------------------------------------------------------------------------- auth
def test_bearer_token_guards_every_endpoint_but_healthz(clf, pictures):
    with client_for(clf, host="0.0.0.0", token=TOKEN) as c:
        assert c.get("/healthz").status_code == 200
        for method, path in (("GET", "/"), ("GET", "/v1/model"), ("POST", "/v1/classify"), ("GET", "/v1/stream"),
                             ("GET", "/stream.mjpg"), ("GET", "/snapshot.jpg"), ("GET", "/nope")):
            response = c.request(method, path)
            assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer")
        wrong = c.get("/v1/model", headers={"Authorization": f"Bearer {TOKEN}x"})
        assert_error(wrong, 401, "unauthorized")
        assert_error(c.get("/v1/model", headers={"Authorization": f"Basic {TOKEN}"}), 401, "unauthorized")
        assert c.get("/v1/model", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get("/v1/model", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
        assert c.get(f"/?access_token={TOKEN}").status_code == 200
        ok = c.post("/v1/classify", content=pictures["dog"],
                    headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "image/jpeg"})
        assert ok.status_code == 200 and ok.json()["categories"]


def test_bind_rules():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.9.9.9")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("::")
    assert not is_loopback("pi.local")
    ServeSettings().validate()
    ServeSettings(host="0.0.0.0", token=TOKEN).validate()
    ServeSettings(host="0.0.0.0", no_auth=True).validate()
    with pytest.raises(ValueError, match="--token TOKEN.*--no-auth"):
        ServeSettings(host="0.0.0.0").validate()
    with pytest.raises(ValueError, match="not both"):
        ServeSettings(token=TOKEN, no_auth=True).validate()
    with pytest.raises(ValueError, match=f"at least {MIN_TOKEN_LENGTH}"):
        ServeSettings(token="short").validate()
    with pytest.raises(ValueError, match="printable ASCII"):
        ServeSettings(token="with a space inside it").validate()
    with pytest.raises(ValueError, match="upload limit"):
        ServeSettings(max_upload_bytes=0).validate()


# --------------------------------------------------------------------------- failures inside the server
def test_an_unexpected_failure_is_a_500_without_a_trace_and_the_server_goes_on(pictures, monkeypatch):
    with Classifier("edge") as own, client_for(own) as c:
        real = own.classify
        calls = {"n": 0}

        def flaky(image, **kw):
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("secret internal detail")
            if calls["n"] == 2:
                raise InferenceError("the runtime failed to run the model")
            return real(image, **kw)

        monkeypatch.setattr(own, "classify", flaky)
        headers = {"Content-Type": "image/jpeg"}
        body = assert_error(c.post("/v1/classify", content=pictures["cat"], headers=headers), 500, "internal_error")
        assert "secret" not in body["error"]["message"]
        assert_error(c.post("/v1/classify", content=pictures["cat"], headers=headers), 500, "inference_failed")
        assert c.post("/v1/classify", content=pictures["cat"], headers=headers).status_code == 200


def test_classification_past_the_request_timeout_is_a_503(pictures, monkeypatch):
    with Classifier("edge") as own, client_for(own, request_timeout_s=0.2) as c:
        real = own.classify

        def slow(image, **kw):
            time.sleep(0.6)
            return real(image, **kw)

        monkeypatch.setattr(own, "classify", slow)
        body = assert_error(c.post("/v1/classify", content=pictures["cat"], headers={"Content-Type": "image/jpeg"}),
                            503, "timeout")
        assert "0.2 s" in body["error"]["message"]


# --------------------------------------------------------------------------- the command line
def test_cli_refuses_a_public_address_without_token_or_no_auth(capsys):
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--token" in err and "--no-auth" in err
    assert main(["serve", "--token", "short"]) == 2
    assert "at least" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
    assert main(["serve", "--max-upload", "0"]) == 2
    assert main(["serve", "--source", "/no/such/video.mp4"]) == 2
    assert "source not found" in capsys.readouterr().err


def test_cli_help_documents_exit_status(capsys):
    assert main(["serve", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0 stopped by Ctrl-C or SIGTERM, 2 bad input" in out
    assert "--token" in out and "--no-auth" in out and "--max-upload" in out


def test_cli_reports_a_busy_port(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "in use" in err


def test_without_the_serve_extra_the_sdk_and_help_work_and_serve_names_the_extra():
    probe = (
        "import sys\n"
        "for name in ('starlette', 'uvicorn', 'python_multipart'): sys.modules[name] = None\n"
        "import edge_sdk\n"
        "from cifar_edge.cli.main import main\n"
        "assert main(['--help']) == 0\n"
        "rc = main(['serve'])\n"
        "print('RC', rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "RC 2" in done.stdout, done.stderr
    assert "serve" in done.stdout  # listed in --help
    lines = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and "pip install 'cifar-edge[serve]'" in lines[0], done.stderr


def test_the_serve_extra_brings_neither_tensorflow_nor_opencv():
    from importlib import metadata

    from test_lightweight import _closure

    closure = _closure(metadata.requires("cifar-edge") or [], "serve")
    assert {"starlette", "uvicorn", "python-multipart", "numpy", "pillow"} <= closure
    assert not closure & {"tensorflow", "tensorflow-cpu", "keras", "opencv-python", "opencv-python-headless",
                          "fastapi", "pydantic"}, closure


def test_importing_the_sdk_or_the_cli_does_not_import_the_web_stack():
    probe = ("import sys, edge_sdk, cifar_edge.cli.main; cifar_edge.cli.main.build_parser(); "
             "print([m for m in ('starlette', 'uvicorn', 'python_multipart', 'cv2') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


# --------------------------------------------------------------------------- the stream hub
class ScriptedSource(FrameSource):
    """A live source that plays a script: arrays are frames, exceptions are raised by read, None ends it."""

    live = True

    def __init__(self, script: list) -> None:
        super().__init__()
        self.spec = SourceSpec("camera", 0)
        self._script = list(script)
        self._index = 0
        self.closed = False

    def read(self, timeout: float | None = None) -> Frame | None:
        if not self._script:
            self._ended = True
            return None
        item = self._script.pop(0)
        if isinstance(item, Exception):
            raise item
        self._index += 1
        return Frame(self._index, float(self._index), item)

    def close(self) -> None:
        self.closed = True


def bgr(value: int) -> np.ndarray:
    return np.full((96, 128, 3), value, np.uint8)



def test_bad_frames_and_a_lost_source_never_end_the_stream(clf):
    opened: list[ScriptedSource] = []
    scripts = [
        [bgr(10), np.zeros((4, 4), np.float32), RuntimeError("device hiccup")],  # then ends: reopened
        [SourceError("camera unplugged")],  # not a frame source at all: the opener below raises it
        [bgr(200), "not an array", bgr(90), bgr(120)],
    ]

    def opener(_text: str) -> FrameSource:
        script = scripts[min(len(opened), len(scripts) - 1)]
        if script and isinstance(script[0], SourceError):
            opened.append(None)  # type: ignore[arg-type]
            raise script[0]
        source = ScriptedSource(script)
        opened.append(source)
        return source

    hub = StreamHub(clf, "fake", backoff_s=0.01, opener=opener)
    hub.start()
    try:
        assert wait_for(lambda: hub.frames >= 4)
        status = hub.status()
        assert status["bad_frames"] >= 2  # the float frame and the string
        assert len(opened) >= 3 and opened[1] is None  # after the read error it was reopened; that open failed,
        assert status["restarts"] >= 1  # so it was tried again, with back-off, and came back
        assert hub._thread.is_alive()
        frame = hub.latest()
        with Image.open(io.BytesIO(frame.jpeg)) as img:
            assert img.format == "JPEG" and img.size == (128, 96)
        assert [c["label"] for c in status["categories"]] == [c.label for c in frame.categories]
        assert len(frame.categories) == 3
    finally:
        hub.stop()
    assert all(s is None or s.closed for s in opened)


def test_a_frame_the_classifier_fails_on_is_skipped(monkeypatch):
    with Classifier("edge") as own:
        real = own.classify
        calls = {"n": 0}

        def failing_once(image, **kw):
            calls["n"] += 1
            if calls["n"] == 1:
                raise InferenceError("one failed runtime call")
            return real(image, **kw)

        monkeypatch.setattr(own, "classify", failing_once)
        hub = StreamHub(own, "fake", opener=lambda _t: ScriptedSource([bgr(50), bgr(60), bgr(70)] * 20))
        hub.start()
        try:
            assert wait_for(lambda: hub.frames >= 2)
            assert hub.bad_frames >= 1 and "one failed runtime call" in hub.last_error
        finally:
            hub.stop()


def test_a_source_that_cannot_be_opened_fails_at_start(clf):
    hub = StreamHub(clf, "/no/such/camera.mp4")
    with pytest.raises(SourceError):
        hub.start()
