"""``cifar-edge serve``: registration builds the parser only; the web stack is imported when the command runs."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from cifar_edge.cli.main import quiet_runtime, summary
from cifar_edge.cli.predict import add_model_options
from cifar_edge.cli.argtypes import float_range, int_range
from cifar_edge.cli.terminal import safe_text

from ..redact import redact_url
from . import settings as s

MAX_SIDE = 8192  # as cifar-edge camera
TOKEN_ENV = "CIFAR_EDGE_TOKEN"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand."""
    p = subparsers.add_parser(
        "serve",
        help=summary("serve"),
        description=(
            "Serve a web page with the live annotated stream (MJPEG) of --source, its top-3 labels and FPS, and a "
            "form to classify a picture; and an HTTP API: POST /v1/classify (image bytes or a multipart form) -> "
            "JSON categories and timing, GET /v1/model, GET /v1/stream, GET /stream.mjpg, GET /snapshot.jpg, "
            "GET /healthz. Binds 127.0.0.1 unless --host says otherwise; any other address needs --token "
            "(bearer auth on every endpoint but /healthz) or --no-auth. Needs the 'serve' extra, and the 'camera' "
            "or 'camera-headless' extra for --source. Exit status: 0 stopped by Ctrl-C or SIGTERM, 2 bad input "
            "(an option, a model or source that cannot be opened, an address that cannot be bound, a missing extra)."
        ),
    )
    p.add_argument("--source", help="what to stream, as for 'cifar-edge camera --source': webcam index, /dev/videoN, "
                                    "picamera2[:N], video file (replayed in a loop), stream URL, image or folder "
                                    "(default: no stream, the API and the upload form only)")
    add_model_options(p)
    p.add_argument("--top-k", type=int_range(1, 1000), default=3, help="labels per answer and per frame (default 3)")
    p.add_argument("--host", default=s.DEFAULT_HOST, help=f"address to bind (default {s.DEFAULT_HOST}: this machine "
                                                          "only; 0.0.0.0 for every interface, with --token)")
    p.add_argument("--port", type=int_range(0, 65535), default=s.DEFAULT_PORT,
                   help=f"port (default {s.DEFAULT_PORT}; 0 picks a free one, printed at start)")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV) or None,
                   help=f"require 'Authorization: Bearer TOKEN' (or ?access_token=TOKEN in a browser) on every "
                        f"endpoint but /healthz; at least {s.MIN_TOKEN_LENGTH} characters (default: ${TOKEN_ENV}, "
                        "which keeps the token out of the process list)")
    p.add_argument("--no-auth", action="store_true", help="allow anyone who can reach --host (no token)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this host name (repeatable; *.example.com for a domain, * for "
                        "any); without it only the bound address, localhost, 127.0.0.1 and ::1 (and, bound to "
                        "0.0.0.0 or ::, any IP address and this machine's name) are answered, so a web page that "
                        "rebinds its own name to this server cannot read it")
    p.add_argument("--max-upload", type=float_range(0.0, 1024.0, lo_open=True), default=s.DEFAULT_MAX_UPLOAD_MB,
                   metavar="MB", help=f"largest picture accepted, in MiB (default {s.DEFAULT_MAX_UPLOAD_MB:g})")
    p.add_argument("--request-timeout", type=float_range(0.0, 3600.0, lo_open=True),
                   default=s.DEFAULT_REQUEST_TIMEOUT_S, metavar="S",
                   help=f"seconds to receive an upload, and then to classify it (default {s.DEFAULT_REQUEST_TIMEOUT_S:g})")
    p.add_argument("--max-streams", type=int_range(1, 1000), default=s.DEFAULT_MAX_STREAMS,
                   help=f"viewers of the stream at once (default {s.DEFAULT_MAX_STREAMS})")
    p.add_argument("--max-inflight", type=int_range(1, 1024), default=s.DEFAULT_MAX_INFLIGHT,
                   help=f"pictures decoded and classified at once; one that timed out holds its slot until its work "
                        f"ends, and a request finding none free within --request-timeout gets 503 "
                        f"(default {s.DEFAULT_MAX_INFLIGHT})")
    p.add_argument("--max-connections", type=int_range(1, 100_000), default=s.DEFAULT_MAX_CONNECTIONS,
                   help=f"open connections at once; more are answered 503 (default {s.DEFAULT_MAX_CONNECTIONS})")
    p.add_argument("--width", type=int_range(16, MAX_SIDE), help="camera capture width to request (and the canvas "
                                                                 "width for still images)")
    p.add_argument("--height", type=int_range(16, MAX_SIDE), help="camera capture height to request (and the canvas "
                                                                  "height for still images)")
    p.add_argument("--interval", type=float_range(0.0, 3600.0), default=1.0,
                   help="seconds each still image is shown (default 1)")
    p.add_argument("--jpeg-quality", type=int_range(1, 100), default=80, help="stream JPEG quality (default 80)")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from . import _deps  # noqa: F401  (the 'serve' extra, or one line naming it)
    from .app import create_app
    from .server import bind_socket, bound_port, run_server
    from edge_sdk.classifier import Classifier

    from .._cv2 import QUIET_NATIVE

    settings = s.ServeSettings(
        host=args.host, port=args.port, token=args.token, no_auth=args.no_auth,
        max_upload_bytes=int(args.max_upload * 1024 * 1024), request_timeout_s=args.request_timeout,
        max_streams=args.max_streams, max_connections=args.max_connections,
        allowed_hosts=tuple(args.allowed_host), max_inflight=args.max_inflight,
    )
    try:
        settings.validate()
        if (args.width is None) != (args.height is None):
            raise ValueError("give --width and --height together")
    except ValueError as exc:
        print(f"cifar-edge serve: error: {safe_text(str(exc))}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:  # unwinds in reverse: stream, model, native quieting, socket
        sock = bind_socket(settings.host, settings.port)  # before the model loads: a busy port fails at once
        stack.callback(sock.close)
        stack.callback(QUIET_NATIVE.reset, QUIET_NATIVE.set(True))  # FFmpeg's chatter hidden (camera_demo._cv2)
        with quiet_runtime(args):
            clf = Classifier(args.model, backend=args.backend, num_threads=args.threads, top_k=args.top_k)
        stack.enter_context(clf)
        hub = None
        if args.source is not None:
            from .stream import StreamHub

            hub = StreamHub(clf, args.source, width=args.width, height=args.height, interval_s=args.interval,
                            jpeg_quality=args.jpeg_quality)
            hub.start()
            stack.callback(hub.stop)
        app = create_app(clf, settings, hub)
        host = f"[{settings.host}]" if ":" in settings.host else settings.host

        def announce() -> None:  # from this line on, a signal is a clean stop
            print(f"cifar-edge serve: http://{host}:{bound_port(sock)}/ (model {clf.model_name} on "
                  f"{clf.backend_name}; stream: {safe_text(redact_url(args.source)) if args.source else 'none'}; auth: "
                  f"{'bearer token' if settings.token else 'none'}); Ctrl-C stops", file=sys.stderr, flush=True)

        try:
            run_server(app, sock, settings, announce)
        except KeyboardInterrupt:  # a signal before run_server took over
            pass
    print("cifar-edge serve: stopped", file=sys.stderr)
    return 0
