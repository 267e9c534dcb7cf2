"""Every bad-file case gets its own code and a sentence a content editor understands."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from indexers.errors import IngestError
from indexers.reader import read_file
from indexers.safety import Limits

from .badfiles import GOOD_DOCX, GOOD_PDF, GOOD_PPTX, blank_pdf, encrypted_docx, encrypted_pdf, zip_bomb_docx

ROOT = Path(__file__).resolve().parent.parent


def refused(path: Path, limits: Limits | None = None) -> IngestError:
    with pytest.raises(IngestError) as err:
        read_file(path, path.parent, limits)
    assert err.value.message and err.value.message[0].isupper(), "a sentence for a person"
    assert err.value.path == path.name
    return err.value


@pytest.mark.parametrize("name", ["empty.pdf", "empty.docx", "empty.pptx", "empty.txt", "empty.md"])
def test_empty_files(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    assert refused(tmp_path / name).code == "empty_file"


def test_corrupt_pdf_docx_and_pptx(tmp_path):
    (tmp_path / "c.pdf").write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 500 + b"\n%%EOF\n")
    (tmp_path / "c.docx").write_bytes(b"PK\x03\x04" + b"garbage" * 300 + b"PK\x05\x06" + b"\0" * 18)
    data = bytearray(GOOD_PPTX.read_bytes())
    data[200:4000] = b"\xff" * 3800  # damage the first member's compressed bytes
    (tmp_path / "c.pptx").write_bytes(bytes(data))
    assert refused(tmp_path / "c.pdf").code == "corrupt_file"
    assert refused(tmp_path / "c.docx").code == "corrupt_file"
    assert refused(tmp_path / "c.pptx").code == "corrupt_file"


@pytest.mark.parametrize("good", [GOOD_PDF, GOOD_DOCX, GOOD_PPTX])
def test_truncated_files(tmp_path, good):
    data = good.read_bytes()
    target = tmp_path / f"cut{good.suffix}"
    target.write_bytes(data[: len(data) // 2])
    err = refused(target)
    assert err.code == "truncated_file"
    assert "cut off" in err.message


def test_password_protected_pdf_and_office_files(tmp_path):
    (tmp_path / "locked.pdf").write_bytes(encrypted_pdf())
    (tmp_path / "locked.docx").write_bytes(encrypted_docx())
    for name in ("locked.pdf", "locked.docx"):
        err = refused(tmp_path / name)
        assert err.code == "encrypted_file" and "password-protected" in err.message


def test_wrong_extensions(tmp_path):
    (tmp_path / "report.pdf").write_bytes(GOOD_DOCX.read_bytes())
    (tmp_path / "slides.pptx").write_bytes(GOOD_PDF.read_bytes())
    (tmp_path / "page.html").write_bytes(GOOD_PDF.read_bytes())
    for name in ("report.pdf", "slides.pptx", "page.html"):
        err = refused(tmp_path / name)
        assert err.code == "wrong_extension", name


def test_oversize_file_is_refused_before_it_is_read(tmp_path):
    (tmp_path / "big.txt").write_bytes(b"a" * 5000)
    err = refused(tmp_path / "big.txt", Limits(max_file_bytes=4096))
    assert err.code == "file_too_large" and "limit" in err.message


def test_pdf_without_extractable_text(tmp_path):
    (tmp_path / "scan.pdf").write_bytes(blank_pdf())
    err = refused(tmp_path / "scan.pdf")
    assert err.code == "no_extractable_text" and "scanned" in err.message


def test_unsupported_type_and_bad_sidecar(tmp_path):
    (tmp_path / "movie.mp4").write_bytes(b"\0\0\0\x18ftypmp42")
    assert refused(tmp_path / "movie.mp4").code == "unsupported_type"
    (tmp_path / "note.txt").write_text("Cardiovex is taken once daily.", encoding="utf-8")
    (tmp_path / "note.txt.meta.yaml").write_text("valid_until: not-a-date\n", encoding="utf-8")
    err = refused(tmp_path / "note.txt")
    assert err.code == "bad_metadata" and "valid_until" in err.message


def test_zip_bomb_docx_is_refused_before_it_is_decompressed(tmp_path):
    bomb = tmp_path / "bomb.docx"
    zip_bomb_docx(bomb, expanded_mb=300)
    assert bomb.stat().st_size < 2 * 1024 * 1024
    # Measured in a fresh process, so the figures are the refusal's own. The refusal's time is compared with the
    # time it takes merely to stream the bomb's members through zlib once, in the same process: a load on the
    # machine slows both alike, and a refusal that decompressed the bomb could not be faster than that.
    code = f"""
import json, time, zipfile
from pathlib import Path
from indexers.errors import IngestError
from indexers.reader import read_file

def high_water_mb():
    # VmHWM belongs to this process image; ru_maxrss would include the forking pytest's memory.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

bomb = Path({str(bomb)!r})
read_file(Path({str(GOOD_DOCX)!r}))  # imports and first-use set-up are not the refusal's cost
start_mb = high_water_mb()
t = time.perf_counter()
try:
    read_file(bomb)
    out = {{"code": None}}
except IngestError as e:
    out = {{"code": e.code, "message": e.message}}
out["seconds"] = time.perf_counter() - t
out["peak_mb"] = high_water_mb()
out["growth_mb"] = out["peak_mb"] - start_mb
t = time.perf_counter()
with zipfile.ZipFile(bomb) as z:
    for info in z.infolist():
        with z.open(info) as member:
            while member.read(1 << 20):
                pass
out["decompress_seconds"] = time.perf_counter() - t
print(json.dumps(out))
"""
    result = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                       cwd=ROOT).stdout)
    assert result["code"] == "zip_bomb", result
    assert re.search(r"would expand to 31\d MB", result["message"]), result["message"]  # 300 MiB of zeros
    assert result["seconds"] < result["decompress_seconds"] / 4, result
    assert result["peak_mb"] < 200, result
