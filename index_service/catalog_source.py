"""What both stores start from: the catalog file and its settings, the embedder's model, and the
catalog's vectors (embedded through the embedder, or imported). Each failure is a one-line
StartupError naming what to fix (the service prints it and exits 2).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from servekit.errors import ServiceError

from .build import embed_all, import_embeddings
from .catalog import Catalog
from .catalog_files import delimiter_option
from .catalog_reader import CatalogError, LoadReport, parse_columns_spec, read_catalog
from .config import IndexConfig
from .embedder_client import EmbedderClient, EmbedderModel
from .startup_plan import StartupError

log = logging.getLogger(__name__)


def catalog_settings(config: IndexConfig) -> tuple[Path, dict]:
    """The catalog file (it must exist) and the column mapping (--columns, checked)."""
    path = Path(config.catalog)
    if not path.is_file():
        raise StartupError(f"{path}: no such catalog file")
    try:
        return path, parse_columns_spec(config.columns)
    except ValueError as exc:
        raise StartupError(str(exc)) from None


def embedder_model(config: IndexConfig, embedder: EmbedderClient) -> EmbedderModel:
    """What the embedder serves (model name, dimension, backend, precision), waiting up to
    --embedder-wait-s for it."""
    try:
        embedder.wait_serving(config.embedder_wait_s)
        return embedder.model_info(timeout=config.embedder_wait_s, wait_for_ready=True)
    except ServiceError as exc:
        raise StartupError(f"cannot start: {exc.message} (waited {config.embedder_wait_s:g} s: "
                           "--embedder-wait-s)") from None


def read_catalog_file(config: IndexConfig, columns: dict) -> tuple[Catalog, LoadReport]:
    """The catalog file read with the recipe; it must hold at least one product."""
    try:
        catalog, report = read_catalog(Path(config.catalog), columns,
                                       csv_delimiter=delimiter_option(config.csv_delimiter))
    except CatalogError as exc:
        raise StartupError(str(exc)) from None
    if len(catalog) == 0:
        raise StartupError(f"{config.catalog}: no products (every row lacks a title, or the file "
                           "has no rows)")
    return catalog, report


def imported_vectors(config: IndexConfig, catalog: Catalog, report: LoadReport,
                     dimension: int) -> np.ndarray:
    """The --embeddings file's vectors, aligned with the catalog and checked."""
    try:
        return import_embeddings(Path(config.embeddings), catalog, report, dimension)
    except ValueError as exc:
        raise StartupError(str(exc)) from None


def embedded_vectors(config: IndexConfig, embedder: EmbedderClient, catalog: Catalog,
                     dimension: int, progress: bool,
                     check: Callable[[], None] | None = None) -> np.ndarray:
    """Every product's search text embedded through the embedder (the build's batching);
    `check` may raise to give the embedding up (build.embed_all)."""
    log.info("embedding %d products through the embedder at %s", len(catalog), embedder.display)
    try:
        return embed_all(embedder, catalog.search_texts(), dimension=dimension,
                         batch_size=config.build_batch_size, concurrency=config.build_concurrency,
                         timeout_s=config.build_timeout_s, progress=progress, check=check)
    except ServiceError as exc:
        raise StartupError(f"build failed: {exc.message}") from None


def catalog_vectors(config: IndexConfig, embedder: EmbedderClient, catalog: Catalog,
                    report: LoadReport, dimension: int, progress: bool,
                    check: Callable[[], None] | None = None) -> tuple[np.ndarray, str]:
    """(vectors in catalog order, where they came from): --embeddings imported, else embedded
    (`check`: see embedded_vectors)."""
    if config.embeddings:
        return (imported_vectors(config, catalog, report, dimension),
                f"imported from {config.embeddings}")
    return embedded_vectors(config, embedder, catalog, dimension, progress, check), "embedder"
