"""What start-up should do with the data directory: a pure decision, no I/O.

    facts = Facts(catalog_sha256=..., columns=..., model=("all-MiniLM-L6-v2", 384), ...)
    p = plan(facts)          # Plan(action=LOAD | REINDEX | REEMBED | BUILD, ...) or StartupError

The rules, in this order:
1. The served build's model (name, dimension) differs from the embedder's: refuse
   (StartupError), or with `--on-model-change rebuild` re-embed: the stored catalog (live updates
   included) when the catalog file is unchanged, else the file; writes logged after the build
   are re-embedded as they are replayed (`Plan.reembed_logged_upserts`).
2. Same catalog file (sha256), format and CSV delimiter (as detected or forced: the same bytes
   read with another delimiter are other products), column mapping and imported embeddings,
   same index type and build parameters: LOAD, embedding nothing.
3. Same data, another index type or build parameters: REINDEX the stored catalog and embeddings
   (no embedding; compacted live updates kept).
4. Otherwise (the file changed, or no build yet): BUILD from the file, embedding every product
   (or importing --embeddings). The writes logged after the last compaction are re-applied on
   top of the new catalog (`Plan.wal_sequence` says which ones the new build already holds).
   Writes compacted into the served build (manifest `wal_sequence` past `catalog_wal_sequence`,
   the log position its catalog file was read at) would go with it: refused (StartupError)
   unless `--on-catalog-change rebuild`; a build from before that field counts as holding
   writes when its `wal_sequence` is past 0.
Another embedder backend or precision than the build's (manifest `embedder_backend`,
`embedder_precision`) changes nothing in these rules: the vectors stay compatible, so it is only a
note (logged as a warning).
"""
from __future__ import annotations

from dataclasses import dataclass, field

LOAD = "load"          # serve the current build as it is
REINDEX = "reindex"    # the stored catalog and embeddings, a new vector index
REEMBED = "reembed"    # the stored catalog, embedded again (the model changed)
BUILD = "build"        # read the catalog file, embed (or import) every product


class StartupError(Exception):
    """The service cannot serve; the message is one line saying why and what to do."""


@dataclass(frozen=True)
class Facts:
    """What start-up found: the configuration, the catalog file, the embedder, the log, and the
    manifest of the build being served (None when there is none)."""
    catalog_sha256: str
    columns: dict
    model: tuple[str, int]              # the embedder's (model name, dimension)
    index_type: str
    index_params: dict                  # the configured parameters of index_type
    build_param_names: tuple[str, ...]  # those of them fixed at build time
    manifest: dict | None = None
    embeddings_sha256: str | None = None  # of --embeddings; None: embed through the embedder
    on_model_change: str = "refuse"
    on_catalog_change: str = "refuse"   # "rebuild": drop compacted live writes with the old file
    wal_base_seq: int = 0               # the log's checkpoint
    wal_last_seq: int = 0               # its last acknowledged write
    data_dir: str = ""                  # for messages
    embedder: str = ""                  # for messages
    catalog_format: str = "csv"         # "csv", "jsonl" or "parquet"
    csv_delimiter: str = ","            # the delimiter a read would use ("" unless CSV)
    # The embedder's (backend, precision): recorded in the manifest; a change is logged, never a
    # reason to rebuild (every backend gives the same vectors to cosine >= 0.999).
    embedder_runtime: tuple[str, str] = ("", "")


@dataclass(frozen=True)
class Plan:
    action: str
    # The logged writes the served build holds (those after it are replayed on top of it).
    wal_sequence: int = 0
    # Replay the logged upserts with vectors of the new model, not the logged ones.
    reembed_logged_upserts: bool = False
    # BUILD: import the --embeddings file instead of embedding through the embedder.
    import_embeddings: bool = False
    # What start-up should log as warnings.
    notes: tuple[str, ...] = field(default=())


def _model_change(f: Facts) -> str | None:
    """None when the build's model is the embedder's; else what changed (a log line)."""
    m = f.manifest
    if m is None or (m.get("model_name"), m.get("dimension")) == tuple(f.model):
        return None
    message = (f"the artifacts in {f.data_dir} were built with model {m.get('model_name')!r} "
               f"(dimension {m.get('dimension')}) but the embedder at {f.embedder} serves "
               f"{f.model[0]!r} (dimension {f.model[1]})")
    if f.on_model_change != "rebuild":
        raise StartupError(f"refusing to serve: {message}; point --embedder at the artifacts' "
                           "model, or start with --on-model-change rebuild")
    return f"{message}: rebuilding (--on-model-change rebuild)"


def _runtime_change(f: Facts) -> str | None:
    """None unless the build records another embedder backend/precision than the one now serving."""
    m = f.manifest
    built = (m or {}).get("embedder_backend"), (m or {}).get("embedder_precision")
    if not all(built) or not all(f.embedder_runtime) or built == tuple(f.embedder_runtime):
        return None
    return (f"the artifacts in {f.data_dir} were embedded with backend {built[0]} {built[1]}, the "
            f"embedder at {f.embedder} runs {f.embedder_runtime[0]} {f.embedder_runtime[1]}: "
            "vectors stay compatible; no rebuild")


def _same_data(f: Facts) -> bool:
    m = f.manifest
    return (m is not None and m.get("catalog_sha256") == f.catalog_sha256
            and m.get("catalog_format", "csv") == f.catalog_format  # builds before formats: CSV
            and m.get("csv_delimiter", ",") == f.csv_delimiter
            and m.get("columns") == f.columns
            and (f.embeddings_sha256 is None or m.get("embeddings_sha256") == f.embeddings_sha256))


def _same_index(f: Facts) -> bool:
    built = f.manifest.get("index_params", {})
    return (f.manifest.get("index_type") == f.index_type
            and all(built.get(k) == f.index_params.get(k) for k in f.build_param_names))


def plan(f: Facts) -> Plan:
    """The Plan for these facts (see the module docstring); StartupError when the build must not
    be served and must not be replaced."""
    change = _model_change(f)
    model_changed = change is not None
    notes = (change,) if model_changed else tuple(filter(None, [_runtime_change(f)]))
    if _same_data(f):
        stored_seq = int(f.manifest.get("wal_sequence", 0))
        if model_changed:
            return Plan(REEMBED, stored_seq, reembed_logged_upserts=True, notes=notes)
        if _same_index(f):
            return Plan(LOAD, stored_seq, notes=notes)
        return Plan(REINDEX, stored_seq, notes=notes)
    compacted = int(f.manifest.get("wal_sequence", 0)) if f.manifest is not None else 0
    wal_sequence = max(f.wal_base_seq, compacted)
    dropped = _compacted_writes(f)
    if dropped:
        notes += (_drop_compacted(f, dropped),)
    if f.manifest is not None or f.wal_last_seq > wal_sequence:
        notes += (f"the catalog file is new or changed since the last build: rebuilding from it; "
                  f"the {max(0, f.wal_last_seq - wal_sequence)} writes logged after seq "
                  f"{wal_sequence} are re-applied on top of it",)
    return Plan(BUILD, wal_sequence, reembed_logged_upserts=model_changed,
                import_embeddings=f.embeddings_sha256 is not None, notes=notes)


def _compacted_writes(f: Facts) -> tuple[int, int] | None:
    """(first, last) log positions of the writes compacted into the served build, None when it
    holds none (its catalog file as read, nothing since)."""
    m = f.manifest
    if m is None:
        return None
    last = int(m.get("wal_sequence", 0))
    first = int(m.get("catalog_wal_sequence", 0)) + 1  # a build from before the field: from 1
    return (first, last) if last >= first else None


def _drop_compacted(f: Facts, seqs: tuple[int, int]) -> str:
    """The note for dropping compacted writes (--on-catalog-change rebuild); else StartupError."""
    what = (f"the artifacts in {f.data_dir} hold live writes (log seq {seqs[0]} to {seqs[1]}) "
            "that a rebuild from the changed catalog file (or mapping) would drop")
    if f.on_catalog_change == "rebuild":
        return f"{what}: dropping them (--on-catalog-change rebuild)"
    built = (f.manifest or {}).get("catalog_path", "the file it was built from")
    raise StartupError(
        f"refusing to rebuild: {what}: point --catalog (and --columns) back at the file they were "
        f"built on ({built}) to keep serving them, or start with --on-catalog-change rebuild to "
        "drop them (ListProducts on the old file exports the served catalog first)")
