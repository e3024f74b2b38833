"""How the rows of earlier builds map to the rows of the build served now, so that a ListProducts
page token (build id, row) continues where it left off across compactions and restarts.

Rows are stable within one build (deletes mask, upserts append). Compaction renumbers them: it
keeps the live rows of the snapshot it took, in order, then replays the writes logged after it,
appended in the order the old build had them. So a RowMap per compaction says where each old row
went, and a build keeps the maps of the last MAX_ROW_MAPS compactions (RowMaps, saved in its
directory as artifacts.ROW_MAP_FILE).
"""
from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .snapshot import Snapshot

log = logging.getLogger(__name__)
MAX_ROW_MAPS = 16  # compactions a page token survives (each map: 1 bit per row of its build)


@dataclass(frozen=True)
class RowMap:
    """The rows of build `from_build`, as rows of the build compacted from its snapshot S (the
    live rows of S, in order, then the writes replayed on top, appended in the same order as in
    the old build). A row r of the old build maps to the number of live rows of S before r: a
    live row to its new position, a dead one to the next live row's; a row appended after S
    (r >= length) to live_count + (r - length)."""
    from_build: str
    length: int                # rows of S
    live_count: int            # live rows of S
    live: np.ndarray | None    # np.packbits(S.live); None: every row of S was live

    @classmethod
    def of(cls, snap: "Snapshot") -> "RowMap":
        live = None if snap.live is None else np.packbits(snap.live)
        return cls(snap.build_id, len(snap.catalog), snap.product_count, live)

    def row(self, old_row: int) -> int:
        if old_row >= self.length:
            return self.live_count + (old_row - self.length)
        if self.live is None:
            return old_row
        return int(np.count_nonzero(np.unpackbits(self.live, count=old_row)))


@dataclass(frozen=True)
class RowMaps:
    """The maps of the last MAX_ROW_MAPS compactions, oldest first: each maps into the build of
    the next one's `from_build`, the last into the build that holds them. A compacted build saves
    them all (artifacts.ROW_MAP_FILE), so that they outlive a restart."""
    maps: tuple[RowMap, ...] = ()

    def then(self, compacted: "Snapshot") -> "RowMaps":
        """The maps of the build written from `compacted`."""
        return RowMaps((*self.maps, RowMap.of(compacted))[-MAX_ROW_MAPS:])

    def row(self, build_id: str, row: int) -> int | None:
        """`row` of build `build_id` as a row of the last build mapped into; None: no map."""
        for i, row_map in enumerate(self.maps):
            if row_map.from_build == build_id:
                for later in self.maps[i:]:
                    row = later.row(row)
                return row
        return None

    def save(self, path: Path) -> None:
        lives = [np.zeros(0, np.uint8) if m.live is None else m.live for m in self.maps]
        with open(path, "wb") as f:
            np.savez(f, from_build=np.array([m.from_build for m in self.maps], dtype=str),
                     length=np.array([m.length for m in self.maps], dtype=np.int64),
                     live_count=np.array([m.live_count for m in self.maps], dtype=np.int64),
                     masked=np.array([m.live is not None for m in self.maps], dtype=bool),
                     end=np.cumsum([len(live) for live in lives], dtype=np.int64),
                     live=np.concatenate([np.zeros(0, np.uint8), *lives]))

    @classmethod
    def load(cls, path: Path) -> "RowMaps":
        """The maps saved in `path`; none when there is no file (a build not made by compaction)
        or it cannot be read (page tokens of earlier builds are then refused, asking for a new
        listing: nothing else depends on it)."""
        if not path.is_file():
            return cls()
        try:
            with np.load(path, allow_pickle=False) as f:
                ends, live = f["end"].tolist(), f["live"].astype(np.uint8)
                return cls(tuple(
                    RowMap(str(build), int(length), int(count),
                           live[start:end] if masked else None)
                    for build, length, count, masked, start, end in zip(
                        f["from_build"].tolist(), f["length"].tolist(), f["live_count"].tolist(),
                        f["masked"].tolist(), [0, *ends[:-1]], ends)))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("%s unreadable (%s): page tokens of earlier builds will be refused", path,
                        exc)
            return cls()
