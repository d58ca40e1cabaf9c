"""Form bodies without extra dependencies: ``application/x-www-form-urlencoded`` and a small
``multipart/form-data`` reader (the mapping upload), both size-capped by the caller."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs


class FormError(ValueError):
    pass


def parse_form(body: bytes, content_type: str) -> dict[str, str | bytes]:
    """Field name -> value (text; a file field's raw bytes). The last of repeated fields wins."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return {}
    if kind == "application/x-www-form-urlencoded":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise FormError("the form is not UTF-8") from None
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True, max_num_fields=200).items()}
    if kind == "multipart/form-data":
        return _multipart(body, content_type)
    raise FormError(f"unsupported content type {kind[:60]!r}")


def _multipart(body: bytes, content_type: str) -> dict[str, str | bytes]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise FormError("the multipart body cannot be read")
    out: dict[str, str | bytes] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        if part.get_filename() is not None:
            out[str(name)] = payload
        else:
            out[str(name)] = payload.decode("utf-8", errors="replace")
    return out
