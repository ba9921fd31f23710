"""Import the ``serve`` extra's packages first, so a missing one is one clear :class:`MissingExtraError`."""

from __future__ import annotations

from cifar_edge.cli.extras import require

#: (import name, what needs it); all three come with ``pip install 'cifar-edge[serve]'``
SERVE_MODULES = (("starlette", "the web app"), ("uvicorn", "the web server"),
                 ("python_multipart", "image uploads from forms"))

for _module, _purpose in SERVE_MODULES:
    require(_module, "serve", f"cifar-edge serve ({_purpose})")
