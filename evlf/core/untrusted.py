"""Text from outside evlf (DICOM headers, filenames, stored answers) made safe to show, log or route on.

Such text is data, never instructions: control characters and line breaks
could forge extra prompt lines or log records, and an unbounded value could
fill a prompt. Every header value that reaches routing evidence or a prompt
passes through `sanitize_untrusted_text` first.
"""

from __future__ import annotations

import re
import unicodedata

#: Default bound on one untrusted value: a DICOM LO is 64 characters, an LT 10,240; routing needs far less.
DEFAULT_MAX_CHARS = 128

#: A DICOM Code String (PS3.5 6.2, VR CS): at most 16 upper-case letters, digits, spaces or underscores.
_CODE_STRING = re.compile(r"[A-Z0-9 _]{1,16}")


def sanitize_untrusted_text(value: object, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """One plain line: control and format characters become spaces, runs of spaces collapse, at most `max_chars`."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFKC", str(value))
    text = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in text)
    text = " ".join(text.split())
    if len(text) > max_chars:
        text = text[: max(0, max_chars - 1)].rstrip() + "…"
    return text


def is_code_string(value: str | None) -> bool:
    """True when `value` is one well-formed DICOM CS value (what Modality or BodyPartExamined must be).

    Lower case is accepted (some vendors write it); line breaks, backslashes
    (several values), punctuation and overlong text are not.
    """
    if not value:
        return False
    return _CODE_STRING.fullmatch(value.strip().upper()) is not None
