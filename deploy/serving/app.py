"""The HTTP layer: FastAPI routes over a SearchService, the web page and the image files.

Routes: GET / (the page), POST /search, POST /encode, POST /items, GET /healthz, GET /stats,
GET /images/<path> (data-set images, from the data root only), GET /added/<name> (added images,
from the store only), /static/* (the page's JS and CSS). Errors are {"detail": "one line"} with
a 4xx status, 507 for a write the disk had no room for, 500 for another failure (its traceback
goes to the service's log). The routes are plain `def`s, so uvicorn runs them in its thread pool;
the service does its own locking (encoders.py, database.py).

In front of the routes: guard.RequestGuard (Host allow-list, cross-origin writes refused, the
optional token), then BodyLimit (the body's size, and the time it may take to arrive). Routes that
decode images hold one of `--max-decodes` slots from the decode until their codes are computed,
after their images' sizes (from the headers) were checked against --max-request-pixels, which
bounds the memory decoded images can take.
"""
import asyncio
import errno
import os
import threading

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from deploy.serving.files import safe_image_path
from deploy.serving.guard import Access, RequestGuard
from deploy.serving.uploads import UploadError, request_pixels
from utils.errors import UserError, WriteError

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
FORM_OVERHEAD = 64 << 10  # room for the multipart framing and the form fields around the file
# The page loads nothing from elsewhere; the browser enforces it.
SECURITY_HEADERS = [(b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; "
                                                 b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
                    (b"x-content-type-options", b"nosniff")]


NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a write the storage had no room for: 507


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuse (413) a request body over `max_bytes`, by its Content-Length or,
    for a chunked body, as soon as the bytes received pass the limit; and (408) a body that has not
    arrived in full `timeout` seconds after the request started (a stalled upload holds a worker
    thread and its memory). Also adds SECURITY_HEADERS."""

    def __init__(self, app, max_bytes, timeout=60.0):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            return await self._refuse(send)
        received = 0
        exceeded = None  # the refusal to send instead of the app's answer
        deadline = asyncio.get_running_loop().time() + self.timeout
        complete = False

        async def limited_receive():
            nonlocal received, exceeded, complete
            if complete:  # the body is in: what is left to wait for is a disconnect
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - asyncio.get_running_loop().time()))
            except asyncio.TimeoutError:
                exceeded = self._refuse_slow
                raise _TooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    exceeded = self._refuse
                    raise _TooLarge
            return message

        async def send_with_headers(message):
            # FastAPI turns any error while parsing a form into its own 400: once the limit was
            # passed, whatever the app answers is replaced by the 413.
            if exceeded is not None:
                if message["type"] == "http.response.start":
                    await exceeded(send)
                return
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + SECURITY_HEADERS}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _TooLarge:
            await self._refuse(send)
        except _TooSlow:
            await self._refuse_slow(send)

    async def _refuse(self, send):
        await _send_json(send, 413, f"request body is larger than the limit of {self.max_bytes} bytes "
                                    f"(--max-upload-mb plus {FORM_OVERHEAD} bytes for the form)")

    async def _refuse_slow(self, send):
        await _send_json(send, 408, f"the request body did not arrive within {self.timeout:g} s (--upload-timeout)",
                         [(b"connection", b"close")])


async def _send_json(send, status, detail, headers=()):
    response = JSONResponse({"detail": detail}, status_code=status)
    await send({"type": "http.response.start", "status": status,
                "headers": response.raw_headers + list(headers) + SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": response.body})


def _read(upload):
    return upload.file.read(), upload.filename or ""


def create_app(service, access=Access(), upload_timeout=60.0):
    """The app over `service`; access (guard.Access): the Host allow-list and the token.

    Over 60 lines because each route is a closure over the service and the decode slots (a few lines each).
    """
    app = FastAPI(title="HashNet image search", docs_url=None, redoc_url=None,
                  description="Search a database of images by Hamming distance of HashNet codes.")
    app.add_middleware(BodyLimit, max_bytes=service.limits.max_bytes + FORM_OVERHEAD, timeout=upload_timeout)
    app.add_middleware(RequestGuard, access=access, extra_headers=SECURITY_HEADERS)  # the outermost: first
    slots = threading.BoundedSemaphore(service.limits.max_decodes)

    def decoding(datas):
        """A decode slot for a request carrying these files (after its pixel count is checked)."""
        request_pixels(datas, service.limits)
        if not slots.acquire(timeout=service.limits.decode_wait):
            raise UploadError(503, f"busy: {service.limits.max_decodes} requests are decoding images "
                                   f"(--max-decodes); try again")
        return _Release(slots)

    @app.exception_handler(UploadError)
    def upload_error(request: Request, exc: UploadError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(WriteError)
    def write_error(request: Request, exc: WriteError):
        room = isinstance(exc.cause, OSError) and exc.cause.errno in NO_ROOM
        return JSONResponse({"detail": str(exc)}, status_code=507 if room else 500)

    @app.exception_handler(UserError)
    def user_error(request: Request, exc: UserError):  # the service's own files or state: not the request
        return JSONResponse({"detail": str(exc)}, status_code=500)

    @app.exception_handler(Exception)
    def internal_error(request: Request, exc: Exception):  # a bug: JSON for the client, the traceback in the log
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the service's log"},
                            status_code=500)

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(parts)}, status_code=422)

    @app.api_route("/healthz", methods=["GET", "HEAD"])
    def healthz():
        return {"status": "ok"}

    @app.get("/stats")
    def stats():
        return service.stats()

    @app.post("/encode")
    def encode(file: UploadFile | None = File(None, description="the image")):
        if file is None:
            raise UploadError(400, "no image: send it as multipart form field 'file'")
        data, name = _read(file)
        with decoding([data]):
            return service.encode(data, name)

    @app.post("/search")
    def search(file: UploadFile | None = File(None, description="the query image"),
               k: int | None = Form(None, description="most matches to return (default 10, at most --max-k)"),
               radius: int | None = Form(None, description="only matches within this Hamming distance")):
        if file is None:
            raise UploadError(400, "no image: send the query as multipart form field 'file'")
        data, name = _read(file)
        with decoding([data]):
            return service.search(data, name, k=k, radius=radius)

    @app.post("/items")
    def add_items(files: list[UploadFile] | None = File(None, description="images to add"),
                  labels: str = Form("", description="class names or indices, comma separated")):
        uploads = [_read(f)[::-1] for f in files or []]
        with decoding([data for _, data in uploads]):
            return service.add_items(uploads, labels)

    @app.get("/images/{path:path}")
    def data_image(path: str):
        return FileResponse(safe_image_path(service.image_root("data"), path))

    @app.get("/added/{path:path}")
    def added_image(path: str):
        return FileResponse(safe_image_path(service.image_root("added"), path))

    @app.api_route("/", methods=["GET", "HEAD"])
    def page():
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


class _Release:
    def __init__(self, semaphore):
        self.semaphore = semaphore

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.semaphore.release()
        return False
