"""At start: load the artifacts in --data-dir, or (re)build them, and return the Snapshot to serve.

Decision (in this order):
1. the embedder's model (name, dimension) differs from the artifacts': refuse with a clear message
   (--on-model-change rebuild re-embeds instead);
2. same catalog file (sha256), column mapping and imported embeddings, same index type and build
   parameters: load, embedding nothing;
3. same data but another index type or build parameters: rebuild the index from the stored
   embeddings (no embedding);
4. otherwise: read the CSV, embed every product (or import --embeddings), write a new build.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from servekit.errors import ServiceError

from . import artifacts, vectors
from .build import embed_all, import_embeddings, write_artifacts
from .catalog import Catalog, CatalogError, parse_columns_spec, read_catalog
from .config import IndexConfig
from .embedder_client import EmbedderClient
from .lexical import LexicalIndex
from .snapshot import Snapshot

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The service cannot serve; the message is one line saying why and what to do."""


def load_snapshot(build_dir: Path, manifest: dict, search_params: dict) -> Snapshot:
    embeddings = np.load(build_dir / "embeddings.npy", mmap_mode="r")
    params = {**manifest.get("index_params", {}), **search_params}
    index = vectors.load(manifest["index_type"], build_dir / "faiss.index", embeddings, params)
    return Snapshot(catalog=Catalog.load(build_dir / "catalog"), vectors=index,
                    lexical=LexicalIndex.load(build_dir / "lexical.npz"), manifest=manifest)


def _build_params(kind: str, params: dict) -> dict:
    return {k: params.get(k) for k in vectors.BACKENDS[kind].build_params}


def prepare(config: IndexConfig, client: EmbedderClient, *, progress: bool = True) -> Snapshot:
    data_dir, csv_path = Path(config.data_dir), Path(config.catalog)
    if not csv_path.is_file():
        raise StartupError(f"{csv_path}: no such catalog file")
    try:
        mapping = parse_columns_spec(config.columns)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    started = time.monotonic()
    catalog_sha = artifacts.sha256_file(csv_path)
    imported_sha = artifacts.sha256_file(Path(config.embeddings)) if config.embeddings else None
    try:
        client.wait_serving(config.embedder_wait_s)
        model_name, dimension = client.model_info(timeout=config.embedder_wait_s, wait_for_ready=True)
    except ServiceError as exc:
        raise StartupError(f"cannot start: {exc.message} (waited {config.embedder_wait_s:g} s; "
                           f"is the embedder running?)") from None

    current = artifacts.current_build(data_dir)
    if current is not None:
        build_dir, manifest = current
        if (manifest.get("model_name"), manifest.get("dimension")) != (model_name, dimension):
            message = (f"the artifacts in {data_dir} were built with model {manifest.get('model_name')!r} "
                       f"(dimension {manifest.get('dimension')}) but the embedder at {client.display} "
                       f"serves {model_name!r} (dimension {dimension})")
            if config.on_model_change == "refuse":
                raise StartupError(f"refusing to serve: {message}; point --embedder at the "
                                   f"artifacts' model, or start with --on-model-change rebuild")
            log.warning("%s: rebuilding (--on-model-change rebuild)", message)
            current = None
    same_data = (current is not None and manifest.get("catalog_sha256") == catalog_sha
                 and manifest.get("columns") == mapping
                 and (imported_sha is None or manifest.get("embeddings_sha256") == imported_sha))
    if same_data and manifest.get("index_type") == config.index_type and \
            _build_params(config.index_type, manifest.get("index_params", {})) == \
            _build_params(config.index_type, config.index_params):
        log.info("loading artifacts from %s (catalog and model unchanged)", build_dir)
        return load_snapshot(build_dir, manifest, config.index_params)

    try:
        catalog, report = read_catalog(csv_path, mapping)
    except CatalogError as exc:
        raise StartupError(str(exc)) from None
    if len(catalog) == 0:
        raise StartupError(f"{csv_path}: no products (every row lacks a title, or the file has no rows)")
    base_manifest = {"model_name": model_name, "dimension": dimension, "catalog_sha256": catalog_sha,
                     "catalog_path": str(csv_path.resolve()), "columns": mapping,
                     "embeddings_sha256": None, "embeddings_source": "embedder"}
    if same_data:
        log.info("index type or parameters changed: re-indexing the stored embeddings")
        embeddings = np.load(build_dir / "embeddings.npy")
        base_manifest.update(embeddings_sha256=manifest.get("embeddings_sha256"),
                             embeddings_source=manifest.get("embeddings_source"))
    elif config.embeddings:
        try:
            embeddings = import_embeddings(Path(config.embeddings), catalog, report, dimension)
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        base_manifest.update(embeddings_sha256=imported_sha,
                             embeddings_source=f"imported from {config.embeddings}")
    else:
        log.info("embedding %d products through the embedder at %s", len(catalog), client.display)
        try:
            embeddings = embed_all(client, catalog.search_texts(), dimension=dimension,
                                   batch_size=config.build_batch_size,
                                   concurrency=config.build_concurrency,
                                   timeout_s=config.build_timeout_s, progress=progress)
        except ServiceError as exc:
            raise StartupError(f"build failed: {exc.message}") from None
    build_dir = write_artifacts(data_dir, catalog=catalog, report=report, embeddings=embeddings,
                               index_type=config.index_type, index_params=config.index_params,
                               base_manifest=base_manifest, started=started)
    del embeddings, catalog  # served from the files just written (memory-mapped where possible)
    manifest = artifacts.current_build(data_dir)[1]
    log.info("built %d products into %s in %.1f s", manifest["product_count"], build_dir,
             manifest["build_seconds"])
    return load_snapshot(build_dir, manifest, config.index_params)
