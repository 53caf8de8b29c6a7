"""The HTTP layer: FastAPI routes over a SearchService, the web page and the image files.

Routes: GET / (the page), POST /search, POST /encode, POST /items, GET /healthz, GET /stats,
GET /images/<path> (data-set images, from the data root only), GET /added/<name> (added images,
from the store only), /static/* (the page's JS and CSS). Errors are {"detail": "one line"} with
a 4xx status. The routes are plain `def`s, so uvicorn runs them in its thread pool; the service
does its own locking (encoders.py, database.py).
"""
import os

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from deploy.serving.files import safe_image_path
from deploy.serving.uploads import UploadError

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
FORM_OVERHEAD = 64 << 10  # room for the multipart framing and the form fields around the file
# The page loads nothing from elsewhere; the browser enforces it.
SECURITY_HEADERS = [(b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; "
                                                 b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
                    (b"x-content-type-options", b"nosniff")]


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuse (413) a request body over `max_bytes`, by its Content-Length or,
    for a chunked body, as soon as the bytes received pass the limit. Also adds SECURITY_HEADERS."""

    def __init__(self, app, max_bytes):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            return await self._refuse(send)
        received = 0
        exceeded = False

        async def limited_receive():
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _TooLarge
            return message

        async def send_with_headers(message):
            # FastAPI turns any error while parsing a form into its own 400: once the limit was
            # passed, whatever the app answers is replaced by the 413.
            if exceeded:
                if message["type"] == "http.response.start":
                    await self._refuse(send)
                return
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + SECURITY_HEADERS}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send):
        response = JSONResponse({"detail": f"request body is larger than the limit of {self.max_bytes} bytes "
                                           f"(--max-upload-mb plus {FORM_OVERHEAD} bytes for the form)"},
                                status_code=413)
        await send({"type": "http.response.start", "status": 413,
                    "headers": response.raw_headers + SECURITY_HEADERS})
        await send({"type": "http.response.body", "body": response.body})


def _read(upload):
    return upload.file.read(), upload.filename or ""


def create_app(service):
    app = FastAPI(title="HashNet image search", docs_url=None, redoc_url=None,
                  description="Search a database of images by Hamming distance of HashNet codes.")
    app.add_middleware(BodyLimit, max_bytes=service.limits.max_bytes + FORM_OVERHEAD)

    @app.exception_handler(UploadError)
    def upload_error(request: Request, exc: UploadError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

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
        return service.encode(data, name)

    @app.post("/search")
    def search(file: UploadFile | None = File(None, description="the query image"),
               k: int | None = Form(None, description="most matches to return (default 10, at most --max-k)"),
               radius: int | None = Form(None, description="only matches within this Hamming distance")):
        if file is None:
            raise UploadError(400, "no image: send the query as multipart form field 'file'")
        data, name = _read(file)
        return service.search(data, name, k=k, radius=radius)

    @app.post("/items")
    def add_items(files: list[UploadFile] | None = File(None, description="images to add"),
                  labels: str = Form("", description="class names or indices, comma separated")):
        return service.add_items([_read(f)[::-1] for f in files or []], labels)

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
