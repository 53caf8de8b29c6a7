"""Who may talk to the service: the Host a request names, where a state-changing request comes from,
and (optionally) a bearer token for the write endpoints. An ASGI middleware in front of the app.

- Host: a browser sends the host name of the page's URL. A page of another site that re-points its
  own name at this machine (DNS rebinding) reaches the service under that foreign name, so a Host
  outside the allow-list (the localhost names, the address the service is bound to, the machine's
  name and any IP address when bound to every interface, and --allowed-hosts) is answered 400.
- Origin: a page of another origin can POST a form or a `fetch(..., {mode: 'no-cors'})` here
  without any CORS preflight; the browser then sends its Origin (and Sec-Fetch-Site). Requests
  other than GET / HEAD / OPTIONS whose Origin, or else Referer, is not this service's own, or
  whose Sec-Fetch-Site is cross-site or same-site, are answered 403 before the app sees them.
  Requests with neither header (curl, scripts) are let through: they are not a browser acting for
  someone.
- Token: with --token (or HASHNET_SERVING_TOKEN), a write request (not GET / HEAD / OPTIONS, other
  than POST /search and POST /encode, which only read) needs `Authorization: Bearer <token>`,
  else 401.
"""
import dataclasses
import hmac
import ipaddress
import json
import socket
import urllib.parse

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
READ_ONLY_POSTS = ("/search", "/encode")  # POST only because they carry an image
TOKEN_ENV = "HASHNET_SERVING_TOKEN"


@dataclasses.dataclass(frozen=True)
class Access:
    """What the guard lets through. bound_host: the --host the service listens on."""
    bound_host: str = "127.0.0.1"
    allowed_hosts: tuple = ()
    token: str = None

    def host_allowed(self, host):
        host = host.lower().rstrip(".")
        names = {*LOCAL_NAMES, *(h.lower() for h in self.allowed_hosts)}
        wildcard = self.bound_host in WILDCARD_ADDRESSES
        if wildcard:
            names.add(socket.gethostname().lower())
        else:
            names.add(self.bound_host.lower().strip("[]"))
        if "*" in names or host in names or any(n.startswith(".") and host.endswith(n) for n in names):
            return True
        if wildcard:  # a browser that names an address reached it directly: no other site's name involved
            try:
                ipaddress.ip_address(host)
                return True
            except ValueError:
                return False
        return False


def split_host(value):
    """The host name of a Host header value ("[::1]:8000" -> "::1", "example.com:80" -> "example.com")."""
    value = value.strip()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def origin_of(url):
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else None


class RequestGuard:
    """ASGI middleware applying an Access to every HTTP request (see the module docstring)."""

    def __init__(self, app, access, extra_headers=()):
        self.app = app
        self.access = access
        self.extra_headers = list(extra_headers)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self.refusal(scope)
        if refusal is not None:
            status, detail, headers = refusal
            body = json.dumps({"detail": detail}).encode("utf-8")
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()), *headers, *self.extra_headers]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def refusal(self, scope):
        """(status, detail, extra headers) for a request to refuse, else None."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host_header = headers.get("host", "")
        host = split_host(host_header)
        if not host or not self.access.host_allowed(host):
            return 400, (f"Host {host_header[:100]!r} is not a name this service answers to (start it with "
                         f"--allowed-hosts NAME to add one)"), []
        method = scope["method"].upper()
        if method in SAFE_METHODS:
            return None
        own = f"{scope.get('scheme', 'http')}://{host_header}".lower()
        site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        source = origin if origin is not None else origin_of(headers.get("referer", "")) if "referer" in headers else None
        if (origin is not None or "referer" in headers) and source != own:
            return 403, (f"cross-origin request refused: it comes from {str(source)[:100]!r}, not from this "
                         f"service's own page ({own})"), []
        if site in ("cross-site", "same-site"):
            return 403, f"cross-origin request refused (Sec-Fetch-Site: {site})", []
        if self.access.token and scope["path"] not in READ_ONLY_POSTS:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode("utf-8"), f"Bearer {self.access.token}".encode("utf-8")):
                return 401, "this service needs a token to change its data: send Authorization: Bearer <token>", \
                    [(b"www-authenticate", b'Bearer realm="hashnet"')]
        return None
