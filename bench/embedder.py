"""Embedder benchmark: the service against in-process encode of the same texts, in one run.

`python -m bench.embedder` (see --help). Written below in full once measured.
"""
from __future__ import annotations

from tests.procs import IKARUS_CSV


def catalog_texts() -> list[str]:
    """The shared ikarus catalog's search texts, by the app's recipe (index_service.catalog)."""
    from index_service.catalog import read_catalog
    catalog, _ = read_catalog(IKARUS_CSV)
    return catalog.search_texts()
