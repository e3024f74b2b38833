"""Synthetic catalogs and embedding-like vectors for the scale benches (seeded, no model).

Vectors: low rank plus noise, like sentence embeddings (their energy sits in a few dozen
directions, so ANN indexes behave as on real data, unlike on uniform noise):

    x = (c * s) @ B + noise,  c ~ N(0, 1)^rank, s_i = 1/sqrt(i), B: random unit rows (rank x dim),
    noise ~ N(0, sigma^2)^dim, then L2-normalized float32.

Queries come from the same generator (same basis, another random stream), so they are near the
catalog's vectors without being copies of them.

Catalog: one CSV row per vector (uniq_id, title, brand, description, price, categories, material,
color) with short invented texts from a fixed vocabulary; the index service reads it with the
app's recipe and imports the vectors with --embeddings.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

DIMENSION = 384
RANK = 64
NOISE_SIGMA = 0.055  # noise ~20% of a vector's energy before normalization
CHUNK = 65536

_SYLLABLES = ("ka", "lo", "mi", "ra", "ten", "vo", "su", "del", "an", "ri", "zo", "bel", "nor",
              "wy", "quo", "fen", "ga", "lu", "pe", "tor")
_NOUNS = ("desk", "chair", "sofa", "lamp", "shelf", "table", "stool", "bench", "cabinet", "rug",
          "mirror", "bed", "ottoman", "dresser", "bookcase", "cart", "rack", "organizer", "mat",
          "frame")
_ADJECTIVES = ("modern", "rustic", "compact", "folding", "ergonomic", "adjustable", "round",
               "tall", "small", "large", "vintage", "minimalist", "industrial", "padded",
               "portable", "stackable", "wall-mounted", "convertible", "classic", "outdoor")
_MATERIALS = ("Wood", "Metal", "Engineered Wood", "Fabric", "Plastic", "Glass", "Leather",
              "Bamboo", "Rattan", "Steel")
_COLORS = ("Black", "White", "Walnut", "Grey", "Oak", "Navy", "Beige", "Green", "Brown", "Natural")
_LEAVES = ("Home Office Desks", "Office Chairs", "Sofas", "Floor Lamps", "Bookcases", "Dining Tables",
           "Bar Stools", "Benches", "Storage Cabinets", "Area Rugs", "Wall Mirrors", "Beds",
           "Ottomans", "Dressers", "Kitchen Carts", "Shoe Racks", "Closet Organizers", "Doormats",
           "Picture Frames", "TV Stands")


def _words(n: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct pronounceable invented words."""
    seen: dict[str, None] = {}
    while len(seen) < n:
        parts = rng.integers(0, len(_SYLLABLES), size=(n, 3))
        for row in parts:
            seen.setdefault("".join(_SYLLABLES[i] for i in row), None)
            if len(seen) == n:
                break
    return np.array(list(seen))


class LowRankVectors:
    """The generator above; `sample(n, stream)` gives n normalized float32 vectors."""

    def __init__(self, dimension: int = DIMENSION, rank: int = RANK, noise: float = NOISE_SIGMA,
                 seed: int = 0):
        self.dimension, self.rank, self.noise, self.seed = dimension, rank, noise, seed
        basis = np.random.default_rng([seed, 0]).standard_normal((rank, dimension))
        basis /= np.linalg.norm(basis, axis=1, keepdims=True)
        self.basis = (basis / np.sqrt(np.arange(1, rank + 1))[:, None]).astype(np.float32)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        coeffs = rng.standard_normal((n, self.rank), dtype=np.float32)
        x = coeffs @ self.basis
        x += rng.standard_normal((n, self.dimension), dtype=np.float32) * np.float32(self.noise)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    def write(self, path: Path, n: int, stream: int = 1) -> Path:
        """n catalog vectors into an .npy file, generated in chunks (bounded memory)."""
        rng = np.random.default_rng([self.seed, stream])
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                        shape=(n, self.dimension))
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            out[start:stop] = self.sample(stop - start, rng)
        out.flush()
        del out
        return path

    def queries(self, n: int, stream: int = 2) -> np.ndarray:
        return self.sample(n, np.random.default_rng([self.seed, stream]))


def write_catalog(path: Path, n: int, seed: int = 0) -> Path:
    """n products with unique ids, in the shared catalog's column layout."""
    rng = np.random.default_rng([seed, 3])
    vocab = _words(2000, rng)
    brands = np.array([w.capitalize() + " " + s for w, s in
                       zip(_words(500, rng), rng.choice(["Home", "Living", "Works", "Co"], 500))])
    noun = rng.integers(0, len(_NOUNS), n)
    adjective = rng.integers(0, len(_ADJECTIVES), n)
    material = rng.integers(0, len(_MATERIALS), n)
    color = rng.integers(0, len(_COLORS), n)
    brand = rng.integers(0, len(brands), n)
    price = rng.gamma(2.0, 60.0, n)
    words = rng.integers(0, len(vocab), (n, 14))
    crumbs = [f"['Home & Kitchen', 'Furniture', '{leaf}']" for leaf in _LEAVES]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["uniq_id", "title", "brand", "description", "price", "categories",
                         "material", "color"])
        for i in range(n):
            ws = vocab[words[i]]
            writer.writerow([
                f"syn-{i:07d}",
                f"{brands[brand[i]]} {_ADJECTIVES[adjective[i]]} {_NOUNS[noun[i]]} {ws[0]} {ws[1]}",
                brands[brand[i]],
                " ".join(ws[2:]),
                f"${price[i]:.2f}",
                crumbs[noun[i]],
                _MATERIALS[material[i]],
                _COLORS[color[i]],
            ])
    return path


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row ids of the exact inner-product top-k of each query (the recall reference), chunked."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_r = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), 4 * CHUNK):
        block = np.asarray(vectors[start:start + 4 * CHUNK], dtype=np.float32)
        scores = queries @ block.T
        s = np.concatenate([best_s, scores], axis=1)
        r = np.concatenate([best_r, np.broadcast_to(np.arange(start, start + len(block)),
                                                    scores.shape)], axis=1)
        keep = np.argpartition(-s, k - 1, axis=1)[:, :k]
        best_s, best_r = np.take_along_axis(s, keep, 1), np.take_along_axis(r, keep, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_r, order, 1)


def recall_at_k(found: list[list[int]], truth: np.ndarray, k: int = 10) -> float:
    """Mean |found_k ∩ truth_k| / k."""
    hits = [len(set(f[:k]) & set(t[:k].tolist())) / k for f, t in zip(found, truth)]
    return float(np.mean(hits)) if hits else 0.0


def parse_size(text: str) -> int:
    """"10k" -> 10000, "1m" -> 1000000, "2500" -> 2500."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if scale > 1 else text
    value = int(float(number) * scale)
    if value < 1:
        raise ValueError(f"size must be at least 1, got {text!r}")
    return value


def size_name(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


_QUERY_NOUNS = _NOUNS + ("couch", "nightstand", "wardrobe", "coffee table", "desk lamp", "armchair",
                         "side table", "bean bag", "futon", "headboard")


def query_texts(n: int, seed: int = 0) -> list[str]:
    """n distinct short shopping queries ("small black wood desk for home office" style), seeded:
    unique texts, so that none of them hits a query cache."""
    rng = np.random.default_rng([seed, 4])
    purposes = ("", " for home office", " for living room", " for bedroom", " for kids",
                " for small spaces", " with storage", " with drawers", " under 100")
    out: dict[str, None] = {}
    while len(out) < n:
        a, m, c, o, p = (rng.integers(0, len(x)) for x in
                         (_ADJECTIVES, _MATERIALS, _COLORS, _QUERY_NOUNS, purposes))
        text = f"{_ADJECTIVES[a]} {_COLORS[c].lower()} {_MATERIALS[m].lower()} {_QUERY_NOUNS[o]}{purposes[p]}"
        out.setdefault(text, None)
    return list(out)
