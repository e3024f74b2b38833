"""Writes data/product_lines.csv (see data/README.md): an invented furniture store whose titles are
bare product-line names. The lines, makers and descriptions are written for this project;
each variant adds a size, a configuration or a colour (data/product_lines_source.py holds them).
Deterministic:

    python3 data/make_product_lines.py data/product_lines.csv
"""
import csv
import hashlib
import sys

from product_lines_source import CATALOG, CROSSOVERS, FINISHES, MAKERS


def price(value: int) -> str:
    return f"{value // 1000} {value % 1000:03d} kr" if value >= 1000 else f"{value} kr"


def main(path: str) -> None:
    rows = []
    for category, lines in CATALOG:
        for line, maker, description, variants in lines:
            for suffix, extra, cost, finish in variants:
                # Titles are the bare line name, as in a catalog that puts the product type in the
                # description; only a size code (digits and x) stays in the title.
                code = suffix if suffix and set(suffix) <= set("0123456789x") else ""
                name = f"{line} {code}".strip()
                variant = f"{line} {suffix}".strip()
                sku = "PL-" + hashlib.sha256(variant.encode()).hexdigest()[:8]
                kind = f" Variant: {suffix}." if suffix and not code else ""
                rows.append({"sku": sku, "name": name, "maker": MAKERS[maker],
                             "text": f"{description} {extra}{kind}", "cost": price(cost),
                             "category_path": category, "finish": finish})
    firsts = {}
    for row, line in zip(rows, [r["name"].split()[0] for r in rows]):
        firsts.setdefault(line, row)
    for line, finishes in FINISHES.items():
        for finish in finishes:
            first = firsts[line]
            sku = "PL-" + hashlib.sha256(f"{first['sku']} {finish}".encode()).hexdigest()[:8]
            rows.append({**first, "sku": sku, "finish": finish})
    for line, maker, category, text, cost, finish in CROSSOVERS:
        sku = "PL-" + hashlib.sha256(f"{line} {category}".encode()).hexdigest()[:8]
        rows.append({"sku": sku, "name": line, "maker": MAKERS[maker], "text": text,
                     "cost": price(cost), "category_path": category, "finish": finish})
    rows.sort(key=lambda r: r["sku"])  # a store export in SKU order, not grouped by category
    skus = [r["sku"] for r in rows]
    assert len(set(skus)) == len(skus)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} products, {len(CATALOG)} categories", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
