"""`evlf info` on malformed files: exit 2, one line per bad file naming it, no traceback, no raw bytes."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file


def evlf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evlf", *args], capture_output=True, text=True)


def ct_with_patched(path: Path, keyword: str, vr: str, placeholder: str | None, value: bytes) -> Path:
    """CT_small.dcm with one explicit-VR element's bytes replaced (added first when `placeholder` is given)."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    tag = pydicom.datadict.tag_for_keyword(keyword)
    if placeholder is not None:
        ds.add_new(tag, vr, placeholder)
    ds.save_as(path)
    raw = bytearray(path.read_bytes())
    at = raw.index(struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode())
    (length,) = struct.unpack_from("<H", raw, at + 6)
    raw[at + 6 : at + 8 + length] = struct.pack("<H", len(value)) + value
    path.write_bytes(bytes(raw))
    return path


def test_malformed_headers_exit_2_with_one_line_each(tmp_path: Path) -> None:
    frames = ct_with_patched(tmp_path / "frames.dcm", "NumberOfFrames", "IS", "1", b"ab")
    rows = ct_with_patched(tmp_path / "rows.dcm", "Rows", "US", None, b"\x80\x01\xfe")
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes()[:1000])
    (tmp_path / "scan[").mkdir()
    markup = tmp_path / "scan[" / "b].png"  # the path reads ".../scan[/b].png": console markup if not escaped
    markup.write_text("not a png")
    out = evlf("info", str(frames), str(rows), str(cut), str(markup))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 4, lines
    for path, problem, line in zip((frames, rows, cut, markup), ("NumberOfFrames", "Rows", "truncated", "not a recognised"), lines):
        assert str(path) in line and problem in line, line
        assert "\\x" not in line and "b'" not in line


def test_a_loadable_file_with_brackets_in_its_name_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "[red]ct.dcm"
    path.write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    out = evlf("info", str(path))
    assert out.returncode == 0, out.stderr
    assert "[red]ct.dcm" in out.stdout  # shown as text, not taken as a colour
