"""Request bodies read by hand, for routes that accept several content types.

Uploads are read into memory only (Starlette's form parser spools big files to disk, and no
media may touch the server's disk): a raw body (``image/*``, ``video/*``,
``application/octet-stream``) or ``multipart/form-data`` with one file field. JSON bodies are
validated against a pydantic model with the same error shape as FastAPI's own."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from hashsvc.errors import BadRequest, HashsvcError, InvalidRequest

_MAX_PARTS = 4
Model = TypeVar("Model", bound=BaseModel)


def parse_json(model: type[Model], body: bytes) -> Model:
    """The body as ``model``: malformed JSON is a BadRequest (400), a schema violation (an
    unexpected field included) an InvalidRequest (422), as for the bodies FastAPI validates."""
    try:
        return model.model_validate(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # bytes json.loads can't decode
        raise BadRequest("the request body is not valid JSON") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidRequest(f"{where}: {first['msg']}") from exc


async def read_body(request: Request) -> bytes:
    """The whole request body (its size is bounded by the BodySizeLimit middleware)."""
    chunks = [chunk async for chunk in request.stream()]
    return b"".join(chunks)


class _Multipart:
    """Parses a multipart body as it streams in, keeping its parts in memory, and stops at the
    first part that breaks the rules (more than ``_MAX_PARTS`` parts, a field other than
    ``file``, a second file) before the rest of the body is read."""

    def __init__(self, content_type: bytes) -> None:
        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if not boundary:
            raise BadRequest("multipart body without a boundary")
        self.parts: list[tuple[bytearray, bytearray]] = []  # (content-disposition, data)
        self._field = bytearray()
        self._files = 0
        callbacks = {
            name: getattr(self, name)
            for name in (
                "on_part_begin",
                "on_header_field",
                "on_header_value",
                "on_header_end",
                "on_headers_finished",
                "on_part_data",
            )
        }
        self._parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]

    def on_part_begin(self) -> None:
        if len(self.parts) >= _MAX_PARTS:
            raise InvalidRequest(f"too many parts in the multipart body (at most {_MAX_PARTS})")
        self.parts.append((bytearray(), bytearray()))

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field.extend(data[start:end])

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        if self._field.lower() == b"content-disposition":
            self.parts[-1][0].extend(data[start:end])

    def on_header_end(self) -> None:
        self._field.clear()

    def on_headers_finished(self) -> None:
        disposition = bytes(self.parts[-1][0])
        if parse_options_header(disposition)[1].get(b"name") != b"file":
            raise InvalidRequest("unexpected form field: send only the media, as a 'file' field")
        if b"filename=" in disposition:
            self._files += 1
            if self._files > 1:
                raise InvalidRequest("more than one file in the multipart body (send one)")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1][1].extend(data[start:end])

    def write(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except HashsvcError:
            raise
        except Exception as exc:  # the parser raises several error types for bad framing
            raise BadRequest(f"malformed multipart body: {exc}") from exc

    def file(self) -> bytes:
        """The content of the file part, once the whole body was written."""
        try:
            self._parser.finalize()
        except Exception as exc:
            raise BadRequest(f"malformed multipart body: {exc}") from exc
        for disposition, data in self.parts:
            if b"filename=" in disposition:
                return bytes(data)
        raise BadRequest("the multipart body has no file part (send the image as a 'file' field)")


def first_file_part(content_type: bytes, body: bytes) -> bytes:
    """The content of the file part of a whole multipart body."""
    multipart = _Multipart(content_type)
    multipart.write(body)
    return multipart.file()


_RAW_MEDIA_TYPES = ("image/", "video/", "application/octet-stream")


def is_media_upload(content_type: str) -> bool:
    """A multipart form or a raw media body."""
    return content_type.lower().startswith(("multipart/form-data", *_RAW_MEDIA_TYPES))


async def read_media(request: Request) -> bytes:
    """The uploaded media: the multipart file part, or the raw body."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/"):
        return await read_body(request)
    multipart = _Multipart(content_type.encode())
    async for chunk in request.stream():
        multipart.write(chunk)  # a part breaking the rules stops the upload here
    return multipart.file()
