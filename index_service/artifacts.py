"""The artifacts in --data-dir: written atomically, loaded without embedding anything.

Layout (one directory per build; CURRENT names the one being served):

    DIR/CURRENT                 the name of the served build directory (replaced atomically)
    DIR/build-<id>/manifest.json      model name and dimension, catalog sha256, counts, index type...
    DIR/build-<id>/faiss.index        the vector index (faiss.write_index)
    DIR/build-<id>/embeddings.npy     float32 (N, dimension), L2-normalized, catalog order
    DIR/build-<id>/catalog/           the catalog as loaded (columnar .npy files + catalog.json)
    DIR/build-<id>/lexical.npz        the TF-IDF model (MODE_LEXICAL / MODE_HYBRID)
    DIR/build-<id>/build_report.txt   what the build did: counts, repeats, skipped rows by line
    DIR/build-<id>/row_map.npz        (compacted builds) how the rows of the builds before map to
                                      this one's, for ListProducts page tokens (row_maps.RowMaps)

A build is written into DIR/.tmp-<id>/, every file fsynced, the directory renamed to build-<id>,
then CURRENT is replaced (write, fsync, rename). A crash at any point leaves CURRENT naming the
previous complete build (or nothing): a half-written index is never loaded. Older builds are
removed after the switch.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np

from .durable_io import fsync_dir

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
# The files of one build (the layout above); every module names them through these.
INDEX_FILE = "faiss.index"
EMBEDDINGS_FILE = "embeddings.npy"
CATALOG_DIR = "catalog"
LEXICAL_FILE = "lexical.npz"
REPORT_FILE = "build_report.txt"
ROW_MAP_FILE = "row_map.npz"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb+") as f:
                os.fsync(f.fileno())
        fsync_dir(Path(dirpath))


def current_build(data_dir: Path) -> tuple[Path, dict] | None:
    """(build directory, manifest) of the served build, or None when there is none usable."""
    pointer = data_dir / CURRENT
    if not pointer.is_file():
        return None
    build = data_dir / pointer.read_text().strip()
    try:
        manifest = json.loads((build / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        log.warning("artifacts in %s unusable (%s): rebuilding", build, exc)
        return None
    if manifest.get("format_version") != FORMAT_VERSION:
        log.warning("artifacts in %s have format %s, expected %s: rebuilding", build,
                    manifest.get("format_version"), FORMAT_VERSION)
        return None
    return build, manifest


def write_build(data_dir: Path, manifest: dict, write_files: Callable[[Path], None]) -> Path:
    """Write a complete build atomically and make it CURRENT. `write_files(tmp_dir)` writes every
    artifact but the manifest. Returns the new build directory."""
    data_dir.mkdir(parents=True, exist_ok=True)
    build_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    tmp = data_dir / f".tmp-{build_id}"
    tmp.mkdir()
    try:
        write_files(tmp)
        (tmp / MANIFEST).write_text(json.dumps({**manifest, "build_id": build_id}, indent=2,
                                               ensure_ascii=False) + "\n")
        _fsync_tree(tmp)
        final = data_dir / f"build-{build_id}"
        os.rename(tmp, final)
        fsync_dir(data_dir)
        pointer_tmp = data_dir / f".{CURRENT}.tmp"
        with open(pointer_tmp, "w") as f:
            f.write(final.name + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(pointer_tmp, data_dir / CURRENT)
        fsync_dir(data_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    remove_stale(data_dir, keep=final.name)
    return final


def write_served_build(data_dir: Path, manifest: dict, *, index, embeddings: np.ndarray, catalog,
                       lexical, report: str, row_maps=None) -> tuple[Path, dict]:
    """Write what a snapshot serves - the vector index, its embeddings, the catalog, the lexical
    model, a report and (compaction) the row maps from the builds before (row_maps.RowMaps) - as
    one atomic build (`write_build`). Returns (directory, manifest)."""
    def write_files(tmp: Path) -> None:
        index.save(tmp / INDEX_FILE)
        np.save(tmp / EMBEDDINGS_FILE, np.ascontiguousarray(embeddings, dtype=np.float32))
        catalog.save(tmp / CATALOG_DIR)
        lexical.save(tmp / LEXICAL_FILE)
        (tmp / REPORT_FILE).write_text(report)
        if row_maps is not None:
            row_maps.save(tmp / ROW_MAP_FILE)

    build_dir = write_build(data_dir, manifest, write_files)
    return build_dir, json.loads((build_dir / MANIFEST).read_text())


def remove_stale(data_dir: Path, keep: str) -> None:
    """Remove builds other than `keep` and leftovers of interrupted builds."""
    for path in data_dir.iterdir():
        if path.is_dir() and path.name != keep and (path.name.startswith("build-")
                                                     or path.name.startswith(".tmp-")):
            shutil.rmtree(path, ignore_errors=True)
