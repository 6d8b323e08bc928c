"""Uploads: streamed to a private folder in chunks, under neutral names, limits enforced as the bytes arrive.

The multipart body is parsed here (python-multipart's streaming parser) rather
than by Starlette, so no byte lands outside the server's own 0700 folder, a
request is refused the moment it goes over a limit, and a client's filename
(often a patient's name) never reaches the disk, the pipeline or a response.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

try:
    from python_multipart.multipart import MultipartParser, parse_options_header
except ImportError:  # python-multipart < 0.0.13
    from multipart.multipart import MultipartParser, parse_options_header  # type: ignore[no-redef]

from evlf.server.settings import ServerSettings

FILE_FIELD = "files"
FORM_FIELDS = ("graph", "specialty", "question", "task", "modality", "study_id", "format", "subject", "allow_patient_identity")
SUFFIXES = (".nii.gz", ".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".nii")

_TEXT = {"type": "string"}
OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {FILE_FIELD: {"type": "array", "items": {"type": "string", "format": "binary"}}}
                    | {name: _TEXT for name in FORM_FIELDS},
                }
            }
        },
    }
}


class UploadRefused(Exception):
    """A request over a limit or malformed; `status` is the HTTP code to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def private_root(parent: Path | None = None) -> Path:
    """The server's upload folder: mode 0700, removed at shutdown."""
    root = Path(tempfile.mkdtemp(prefix="evlf-uploads-", dir=parent))
    os.chmod(root, 0o700)
    return root


def neutral_name(n: int, client_name: str | None) -> str:
    """`image-N` plus the client's extension when it is a known image one; nothing else of the name survives."""
    lower = (client_name or "").lower()
    suffix = next((s for s in SUFFIXES if lower.endswith(s)), "")
    return f"image-{n}{suffix}"


@dataclass
class Upload:
    """One request's folder, form fields and saved files; `remove()` deletes it all."""

    folder: Path
    fields: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def scrub(self, text: str) -> str:
        """Replace every server path of this upload by `upload N`."""
        for n, path in reversed(list(enumerate(self.files, start=1))):
            for spelling in {str(path), str(path.resolve())}:
                text = text.replace(spelling, f"upload {n}")
            text = text.replace(path.name, f"upload {n}")
        for spelling in {str(self.folder), str(self.folder.resolve())}:
            text = text.replace(spelling + os.sep, "").replace(spelling, "upload")
        return text


class _FormParser:
    """Callbacks for python-multipart: files go to disk as they stream, fields are capped as they grow."""

    def __init__(self, upload: Upload, settings: ServerSettings) -> None:
        self.upload = upload
        self.settings = settings
        self.total = 0
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._buffer = bytearray()
        self._file: IO[bytes] | None = None
        self._file_bytes = 0

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._grow("_header_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._grow("_header_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _grow(self, attr: str, data: bytes) -> None:
        value = getattr(self, attr) + data
        if len(value) > 4096:
            raise UploadRefused(422, "a multipart header is longer than 4096 bytes")
        setattr(self, attr, value)

    def _part_begin(self) -> None:
        self._headers, self._buffer, self._file, self._file_bytes = {}, bytearray(), None, 0

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._name == FILE_FIELD:
            count = len(self.upload.files) + 1
            if count > self.settings.max_files:
                raise UploadRefused(413, f"too many files: at most {self.settings.max_files} per request")
            filename = options.get(b"filename", b"").decode("utf-8", "replace")
            path = self.upload.folder / neutral_name(count, filename)
            self._file = path.open("xb")
            self.upload.files.append(path)
        elif self._name not in FORM_FIELDS:
            expected = ", ".join((FILE_FIELD, *FORM_FIELDS))
            raise UploadRefused(422, f"unknown form field {self._name[:40]!r} (expected: {expected})")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file_bytes += end - start
            if self._file_bytes > self.settings.max_file_bytes:
                n = len(self.upload.files)
                raise UploadRefused(413, f"upload {n} is larger than {self.settings.max_file_bytes} bytes")
            self._file.write(data[start:end])
            return
        self._buffer += data[start:end]
        limit = self._field_limit(self._name)
        if len(self._buffer) > 4 * limit:  # UTF-8: at most 4 bytes a character; checked exactly at the end
            raise UploadRefused(422, _too_long(self._name, limit))

    def _part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            return
        text = self._buffer.decode("utf-8", "replace")
        limit = self._field_limit(self._name)
        if len(text) > limit:
            raise UploadRefused(422, _too_long(self._name, limit))
        self.upload.fields[self._name] = text

    def _field_limit(self, name: str) -> int:
        return self.settings.max_question_chars if name == "question" else self.settings.max_field_chars

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _too_long(name: str, limit: int) -> str:
    return f"{name} is longer than {limit} characters"


def boundary_of(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise UploadRefused(422, f"send multipart/form-data with the images in the field `{FILE_FIELD}`")
    return options[b"boundary"]


async def receive(chunks: AsyncIterator[bytes], content_type: str, upload: Upload, settings: ServerSettings) -> Upload:
    """Stream a multipart body into `upload`; raises UploadRefused at the first limit crossed."""
    form = _FormParser(upload, settings)
    parser = MultipartParser(boundary_of(content_type), form.callbacks())
    try:
        async for chunk in chunks:
            form.total += len(chunk)
            if form.total > settings.max_request_bytes:
                raise UploadRefused(413, f"the request is larger than {settings.max_request_bytes} bytes")
            parser.write(chunk)
        parser.finalize()
    finally:
        form.close()
    if not upload.files:
        raise UploadRefused(422, f"no image: send one or more files in the form field `{FILE_FIELD}`")
    return upload
