"""What ``cifar-edge serve`` takes, checked before anything is opened: bind address and auth rules, limits."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: largest accepted upload (bytes) unless --max-upload says otherwise: any phone picture fits
DEFAULT_MAX_UPLOAD_MB = 8.0
#: seconds one request may spend reading its upload, and then classifying it
DEFAULT_REQUEST_TIMEOUT_S = 10.0
#: browsers watching the stream at once
DEFAULT_MAX_STREAMS = 4
#: open connections uvicorn accepts at once (more get 503)
DEFAULT_MAX_CONNECTIONS = 64
#: classifications (decode and inference) in flight at once; a request past them waits within its timeout
DEFAULT_MAX_INFLIGHT = 2
MIN_TOKEN_LENGTH = 16
LOCAL_NAMES = ("localhost", "ip6-localhost")
#: Host names every server answers to (a browser on this machine); more with --allowed-host
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    """True when ``host`` is a loopback address (127.0.0.0/8, ::1) or the name localhost."""
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name or interface address: reachable from elsewhere


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ServeSettings:
    """The server's options; :meth:`validate` enforces the rules below."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    no_auth: bool = False
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1024 * 1024)
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    max_streams: int = DEFAULT_MAX_STREAMS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: more Host names (``pi.local``, ``*.example.com``, ``*`` for any) the server answers to
    allowed_hosts: tuple[str, ...] = ()
    max_inflight: int = DEFAULT_MAX_INFLIGHT

    def trusted_hosts(self) -> tuple[str, ...]:
        """The Host names (lower case; ``*.domain`` and ``*`` patterns) requests may carry: the bound address,
        localhost, 127.0.0.1 and ::1, and :attr:`allowed_hosts`."""
        bound = () if self.host.strip("[]") in WILDCARD_HOSTS else (self.host.strip("[]").lower(),)
        names = (*LOOPBACK_HOSTS, *bound, *(h.lower().rstrip(".").strip("[]") for h in self.allowed_hosts))
        return tuple(dict.fromkeys(names))

    @property
    def binds_every_interface(self) -> bool:
        """True for 0.0.0.0 or ::, where clients use any of the machine's addresses."""
        return self.host.strip("[]") in WILDCARD_HOSTS

    @property
    def auth_required(self) -> bool:
        """True when every endpoint but ``/healthz`` asks for the bearer token."""
        return self.token is not None

    def validate(self) -> None:
        """Raise ``ValueError`` for a bad combination or value.

        Binding an address other than loopback needs ``token`` (bearer auth) or an explicit ``no_auth``;
        a token is printable ASCII without spaces, at least :data:`MIN_TOKEN_LENGTH` characters.
        """
        if not self.host:
            raise ValueError("--host must not be empty")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port must lie in [0, 65535], got {self.port}")
        if self.token is not None and self.no_auth:
            raise ValueError("give --token or --no-auth, not both")
        if self.token is not None:
            if len(self.token) < MIN_TOKEN_LENGTH:
                raise ValueError(f"--token must be at least {MIN_TOKEN_LENGTH} characters "
                                 "(for example: python -c 'import secrets; print(secrets.token_urlsafe(24))')")
            if not all(33 <= ord(ch) <= 126 for ch in self.token):
                raise ValueError("--token must be printable ASCII without spaces")
        if not is_loopback(self.host) and self.token is None and not self.no_auth:
            raise ValueError(f"binding {self.host} makes the server reachable from other machines: give "
                             "--token TOKEN (clients send 'Authorization: Bearer TOKEN') or --no-auth to allow anyone")
        if self.max_upload_bytes < 1:
            raise ValueError(f"the upload limit must be at least 1 byte, got {self.max_upload_bytes}")
        if not self.request_timeout_s > 0:
            raise ValueError(f"--request-timeout must be > 0 seconds, got {self.request_timeout_s}")
        if self.max_streams < 1 or self.max_connections < 1 or self.max_inflight < 1:
            raise ValueError("--max-streams, --max-connections and --max-inflight must be >= 1")
        for name in self.allowed_hosts:
            pattern = name.lower().rstrip(".")
            if _is_ip(pattern):
                continue
            if (not pattern or len(pattern) > 253 or not pattern.isascii() or any(c in pattern for c in " /@:\\")
                    or "*" in pattern[1:] or (pattern.startswith("*") and pattern != "*" and not pattern.startswith("*."))):
                raise ValueError(f"--allowed-host {name!r} is not a host name (examples: pi.local, *.example.com, "
                                 "or * for any)")
