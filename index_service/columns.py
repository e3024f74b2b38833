"""Compact column storage: many strings in one UTF-8 buffer plus offsets (no Python object per row).

A catalog of a million products keeps a handful of numpy arrays instead of millions of `str`
objects; columns save as plain .npy files and load memory-mapped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np


class _NpyArrays:
    """Saves its `__slots__` arrays as NAME.<slot>.npy; loads them memory-mapped."""

    __slots__ = ()

    def save(self, directory: Path, name: str) -> None:
        for slot in self.__slots__:
            np.save(directory / f"{name}.{slot}.npy", getattr(self, slot))

    @classmethod
    def load(cls, directory: Path, name: str):
        return cls(*(np.load(directory / f"{name}.{slot}.npy", mmap_mode="r") for slot in cls.__slots__))


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
        h = np.uint64(self.hash_id(product_id))
        j = int(np.searchsorted(self.hashes, h, side="left"))
        while j < len(self.hashes) and self.hashes[j] == h:
            row = int(self.rows[j])
            if ids[row] == product_id:
                return row
            j += 1
        return None

