"""Compact column storage: many strings in one UTF-8 buffer plus offsets (no Python object per row).

A catalog of a million products keeps a handful of numpy arrays instead of millions of `str`
objects; columns save as plain .npy files and load memory-mapped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np


def load_mapped(path: Path) -> np.ndarray:
    """A saved .npy array, memory-mapped read-only, as a plain ndarray.

    The view shares the mapping (nothing is read until used) but drops np.memmap's Python-level
    `__getitem__` / `__array_finalize__`, which made reading one product's fields ~4x slower.
    """
    return np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)


class _NpyArrays:
    """Saves its `__slots__` arrays as NAME.<slot>.npy; loads them memory-mapped."""

    __slots__ = ()

    def save(self, directory: Path, name: str) -> None:
        for slot in self.__slots__:
            np.save(directory / f"{name}.{slot}.npy", getattr(self, slot))

    @classmethod
    def load(cls, directory: Path, name: str):
        return cls(*(load_mapped(directory / f"{name}.{slot}.npy") for slot in cls.__slots__))


class StringColumn(_NpyArrays):
    """An immutable sequence of strings: `data` (uint8, UTF-8) and `offsets` (int64, n + 1)."""

    __slots__ = ("data", "offsets")

    def __init__(self, data: np.ndarray, offsets: np.ndarray):
        self.data, self.offsets = data, offsets

    @classmethod
    def from_strings(cls, values: Iterable[str]) -> "StringColumn":
        encoded = [v.encode("utf-8", "surrogatepass") for v in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        if encoded:
            np.cumsum([len(e) for e in encoded], out=offsets[1:])
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        return cls(data, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        start, end = self.offsets[i], self.offsets[i + 1]
        return self.data[start:end].tobytes().decode("utf-8", "surrogatepass")

    def take(self, rows: Sequence[int]) -> list[str]:
        return [self[int(r)] for r in rows]

    def to_list(self) -> list[str]:
        return [self[i] for i in range(len(self))]

    @classmethod
    def empty(cls, n: int) -> "StringColumn":
        return cls(np.zeros(0, dtype=np.uint8), np.zeros(n + 1, dtype=np.int64))

    def concat(self, other: "StringColumn") -> "StringColumn":
        return StringColumn(np.concatenate([self.data, other.data]),
                            np.concatenate([self.offsets, np.asarray(other.offsets[1:]) + self.offsets[-1]]))

    def select(self, rows: np.ndarray) -> "StringColumn":
        starts, ends = np.asarray(self.offsets[:-1])[rows], np.asarray(self.offsets[1:])[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(ends - starts, out=offsets[1:])
        data = np.asarray(self.data)
        filled = ends > starts  # empty strings add no bytes (a sparse attribute column)
        return StringColumn(np.concatenate([data[a:b] for a, b in zip(starts[filled], ends[filled])]
                                           or [np.zeros(0, np.uint8)]), offsets)



class ListColumn(_NpyArrays):
    """Per row, a list of small integer codes into a vocabulary (CSR: codes + offsets)."""

    __slots__ = ("codes", "offsets")

    def __init__(self, codes: np.ndarray, offsets: np.ndarray):
        self.codes, self.offsets = codes, offsets

    @classmethod
    def from_lists(cls, lists: Sequence[Sequence[int]]) -> "ListColumn":
        offsets = np.zeros(len(lists) + 1, dtype=np.int64)
        if lists:
            np.cumsum([len(x) for x in lists], out=offsets[1:])
        codes = np.fromiter((c for x in lists for c in x), dtype=np.int32, count=int(offsets[-1]))
        return cls(codes, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.codes[self.offsets[i]:self.offsets[i + 1]]

    def concat(self, other: "ListColumn", code_map: np.ndarray) -> "ListColumn":
        """Rows of `other` appended, its codes translated through `code_map`."""
        return ListColumn(np.concatenate([self.codes, code_map[np.asarray(other.codes)].astype(np.int32)]),
                          np.concatenate([self.offsets, np.asarray(other.offsets[1:]) + self.offsets[-1]]))

    def select(self, rows: np.ndarray) -> "ListColumn":
        as_strings = StringColumn(np.asarray(self.codes).view(np.uint8), np.asarray(self.offsets) * 4)
        picked = as_strings.select(rows)
        return ListColumn(picked.data.view(np.int32), picked.offsets // 4)

    def rows_with_any(self, wanted_codes: np.ndarray, n_rows: int) -> np.ndarray:
        """Boolean mask of the rows whose list holds at least one of `wanted_codes`."""
        mask = np.zeros(n_rows, dtype=bool)
        if len(wanted_codes) == 0 or len(self.codes) == 0:
            return mask
        hit = np.isin(self.codes, wanted_codes)
        # row of entry j is the r with offsets[r] <= j < offsets[r + 1]
        rows = np.searchsorted(self.offsets, np.flatnonzero(hit), side="right") - 1
        mask[rows] = True
        return mask



class IdLookup(_NpyArrays):
    """id -> row through a sorted array of 64-bit hashes (no dict of a million strings)."""

    __slots__ = ("hashes", "rows")

    def __init__(self, hashes: np.ndarray, rows: np.ndarray):
        self.hashes, self.rows = hashes, rows

    @staticmethod
    def hash_id(product_id: str) -> int:
        import hashlib
        digest = hashlib.blake2b(product_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        return int.from_bytes(digest, "little")

    @classmethod
    def build(cls, ids: Sequence[str]) -> "IdLookup":
        hashes = np.fromiter((cls.hash_id(i) for i in ids), dtype=np.uint64, count=len(ids))
        order = np.argsort(hashes, kind="stable")
        return cls(hashes[order], order.astype(np.int64))

    def find(self, product_id: str, ids: StringColumn) -> int | None:
        """The row of `product_id`; the last one when it appears on several rows (after appends)."""
        h = np.uint64(self.hash_id(product_id))
        j = int(np.searchsorted(self.hashes, h, side="left"))
        found = None
        while j < len(self.hashes) and self.hashes[j] == h:
            row = int(self.rows[j])
            if ids[row] == product_id and (found is None or row > found):
                found = row
            j += 1
        return found

    def concat(self, other: "IdLookup", row_offset: int) -> "IdLookup":
        hashes = np.concatenate([self.hashes, other.hashes])
        rows = np.concatenate([self.rows, np.asarray(other.rows) + row_offset])
        order = np.argsort(hashes, kind="stable")
        return IdLookup(hashes[order], rows[order])

    def select(self, rows: np.ndarray, n_rows: int) -> "IdLookup":
        """The lookup of the catalog made of `rows` (in that order)."""
        new_row = np.full(n_rows, -1, dtype=np.int64)
        new_row[rows] = np.arange(len(rows))
        mapped = new_row[np.asarray(self.rows)]
        keep = mapped >= 0
        return IdLookup(np.asarray(self.hashes)[keep], mapped[keep])

