"""cifar-edge serve as a real process on 127.0.0.1: the MJPEG stream, viewer and upload limits on the wire,
a clean stop on SIGTERM, and a small load test with no error (the full one: python -m benchmarks.serve_load)."""

from __future__ import annotations

import http.client
import io
import json
import signal
import socket
import time

import pytest
from PIL import Image

from benchmarks.serve_load import load_pictures, run_load, start_server
from cifar_edge.camera_demo.synth import build_video, cifar_test_images


@pytest.fixture(scope="module")
def video(tmp_path_factory, cifar10_dir):
    path = tmp_path_factory.mktemp("serve-video") / "cifar.mp4"
    build_video(cifar_test_images(cifar10_dir, per_class=1), path, size=(160, 120), hold=3, fps=10)
    return path


@pytest.fixture(scope="module")
def server(video):
    with start_server(["--model", "edge", "--source", str(video), "--max-streams", "1", "--request-timeout", "1",
                       "--max-upload", "0.5"]) as running:
        yield running


def connect(server) -> http.client.HTTPConnection:
    host, port = server.host_port
    return http.client.HTTPConnection(host, port, timeout=30)


def read_parts(response: http.client.HTTPResponse, count: int) -> list[bytes]:
    """The first ``count`` JPEGs of a multipart/x-mixed-replace response."""
    parts = []
    while len(parts) < count:
        line = response.fp.readline()
        if line.strip() != b"--frame":
            continue
        headers = {}
        while (header := response.fp.readline().strip()):
            name, _, value = header.decode().partition(":")
            headers[name.lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        parts.append(response.fp.read(int(headers["content-length"])))
    return parts


def test_mjpeg_stream_sends_changing_annotated_frames_to_a_bounded_number_of_viewers(server):
    viewer = connect(server)
    viewer.request("GET", "/stream.mjpg")
    response = viewer.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
    parts = read_parts(response, 12)
    sizes = set()
    for jpeg in parts:
        with Image.open(io.BytesIO(jpeg)) as img:
            assert img.format == "JPEG" and img.size == (160, 120)
            sizes.add(img.tobytes())
    assert len(sizes) > 1  # the frames change

    second = connect(server)  # --max-streams 1: a second viewer is refused while the first watches
    second.request("GET", "/stream.mjpg")
    refused = second.getresponse()
    body = json.loads(refused.read())
    assert refused.status == 503 and body["error"]["code"] == "too_many_viewers"
    second.close()
    viewer.close()

    def admitted() -> bool:  # the first viewer's slot comes back once it left
        c = connect(server)
        c.request("GET", "/stream.mjpg")
        r = c.getresponse()
        c.close()
        return r.status == 200

    deadline = time.monotonic() + 20
    while not admitted():
        assert time.monotonic() < deadline, "a viewer that left still holds its slot"
        time.sleep(0.3)


def test_status_and_snapshot(server):
    c = connect(server)
    c.request("GET", "/v1/stream")
    status = json.loads(c.getresponse().read())
    assert status["state"] == "running" and status["kind"] == "video" and status["frames"] > 0
    assert len(status["categories"]) == 3 and status["fps"] > 0
    c.request("GET", "/snapshot.jpg")
    snap = c.getresponse()
    assert snap.status == 200 and snap.getheader("Content-Type") == "image/jpeg"
    with Image.open(io.BytesIO(snap.read())) as img:
        assert img.size == (160, 120)
    c.request("GET", "/healthz")
    assert json.loads(c.getresponse().read()) == {"status": "ok", "stream": "running"}


def test_a_slow_upload_times_out_with_a_json_error(server):
    host, port = server.host_port
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: 5000\r\n\r\n"
                  + b"\xff\xd8" + b"\0" * 100)  # then nothing: --request-timeout 1
        start = time.monotonic()
        answer = b""
        while b"}}" not in answer:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert time.monotonic() - start < 20
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body)["error"]["code"] == "request_timeout"


def test_bad_pictures_do_not_hurt_the_next_request(server, cifar10_dir):
    good = load_pictures(cifar10_dir, 1)[0]
    c = connect(server)
    for body, content_type, status in ((b"\xff\xd8\xff garbage", "image/jpeg", 400), (b"x" * 600_000, "image/png", 413),
                                       (good, "text/plain", 415), (good, "image/jpeg", 200)):
        c.request("POST", "/v1/classify", body=body, headers={"Content-Type": content_type})
        response = c.getresponse()
        payload = json.loads(response.read())
        assert response.status == status, payload
        if status != 200:
            assert payload["error"]["code"] and payload["error"]["message"]
            c.close()
            c = connect(server)  # the server may close a connection after refusing an unread body


def test_small_load_test_has_no_errors(server, cifar10_dir):
    host, port = server.host_port
    result = run_load(host, port, load_pictures(cifar10_dir, 20), clients=4, requests=25)
    assert result["errors"] == 0, result["error_examples"]
    assert result["requests"] == 100
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]
    assert server.peak_rss_mb() > 0


def test_sigterm_stops_the_server_with_status_0(video):
    with start_server(["--model", "edge", "--source", str(video)]) as running:
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(30) == 0
    assert any("stopped" in line for line in running.stderr), running.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_at_the_moment_the_address_is_announced_is_a_clean_stop(sig):
    """The race CI once lost: a signal sent as soon as the address line appears, before uvicorn built its event
    loop and took the signals, must still stop the server without an exception, and the handlers come back."""
    from starlette.applications import Starlette

    from cifar_edge.camera_demo.web.server import bind_socket, run_server
    from cifar_edge.camera_demo.web.settings import ServeSettings

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    sock = bind_socket("127.0.0.1", 0)
    announced = []

    def announce() -> None:
        announced.append(True)
        signal.raise_signal(sig)  # delivered here, in the main thread, before the server runs

    try:
        started = time.monotonic()
        run_server(Starlette(), sock, ServeSettings(host="127.0.0.1", port=0), announce)
    finally:
        sock.close()
    assert announced and time.monotonic() - started < 10
    assert {s: signal.getsignal(s) for s in before} == before
