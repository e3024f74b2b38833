"""The OpenVINO backend's cache of converted models: convert once, load the IR on later starts.

    DIR/<model dir name>-<key>/model.xml, model.bin     one converted model (OpenVINO IR)
                               tokenizer.json, serving.json   its tokenizer (standalone_tokenizer.py)

The key hashes what the IR depends on: this cache's format, the OpenVINO version, the model
directory's resolved path and each of its files' name, size and modification time (a replaced or
reinstalled model gets a new key). A stale IR is thus never loaded. Precision is not in the key:
the IR keeps full fp32 weights (saved without fp16 compression) and bf16 is chosen when the model
is compiled, so one IR serves every precision.

Writes are atomic: the IR is saved into DIR/.tmp-<key>-<random>/ and renamed into place; when two
embedders convert at once, the first rename wins and the other drops its copy. An IR that cannot be
read is removed and converted again. A cache directory that cannot be written only costs the
conversion at each start (logged).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

FORMAT = "recsys-ov-ir-1"  # bump when the conversion (embedder_service/openvino_backend.py) changes
MODEL_XML = "model.xml"


def default_cache_dir(environ=os.environ) -> Path:
    """$XDG_CACHE_HOME/recsys/openvino, else ~/.cache/recsys/openvino."""
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "recsys" / "openvino"


def resolve_cache_dir(setting: str) -> Path | None:
    """--cache-dir: "" = the default, "off" = no cache (None), else that directory."""
    if setting.strip().lower() == "off":
        return None
    return Path(setting).expanduser() if setting.strip() else default_cache_dir()


def cache_key(model_path: str, openvino_version: str) -> str:
    """The entry's directory name for this model directory and OpenVINO version."""
    root = Path(model_path).resolve()
    digest = hashlib.sha256(f"{FORMAT}\n{openvino_version}\n{root}\n".encode())
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return f"{root.name}-{digest.hexdigest()[:16]}"


def load_or_convert(cache_dir: Path | None, key: str, read: Callable[[Path], object],
                    convert: Callable[[], object], save: Callable[[object, Path], None]):
    """(model, how): the cached IR read with `read(xml)`, else `convert()` (then saved with
    `save(model, xml)` into the cache, atomically). `how` says which, for the start-up log."""
    if cache_dir is None:
        return convert(), "converted (cache off)"
    entry = cache_dir / key
    xml = entry / MODEL_XML
    if xml.is_file():
        try:
            return read(xml), f"loaded from the cache {entry}"
        except Exception as exc:  # noqa: BLE001 - a damaged entry is converted again
            log.warning("cached model %s unreadable (%s: %s): converting again", entry,
                        type(exc).__name__, exc)
            shutil.rmtree(entry, ignore_errors=True)
    model = convert()
    try:
        _store(cache_dir, entry, model, save)
    except OSError as exc:
        log.warning("cannot write the model cache %s (%s): converting again at each start",
                    cache_dir, exc)
        return model, "converted (not cached)"
    return model, f"converted and cached in {entry}"


def _store(cache_dir: Path, entry: Path, model, save: Callable[[object, Path], None]) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".tmp-{entry.name}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        save(model, tmp / MODEL_XML)
        for path in tmp.iterdir():  # on disk before the rename makes the entry visible
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        if entry.is_dir() and not (entry / MODEL_XML).is_file():  # a leftover without its IR
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.rename(tmp, entry)
        except OSError:
            if not (entry / MODEL_XML).is_file():
                raise
            log.info("another process cached %s first: keeping its copy", entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
