"""The evaluation's files: exact JSON shape, a report table that agrees with it, determinism."""
import json
import re

from client.eval_report import EXAMPLE_QUERIES, EvalReport, metrics_table, write_report

KS = (1, 5)


def _modes():
    semantic = {"self_retrieval@1": 0.97701, "self_retrieval@5": 0.99, "precision@1": 0.6,
                "precision@5": 0.51966, "recall@1": 0.1, "recall@5": 1 / 3, "mrr@10": 0.72314}
    lexical = {**semantic, "precision@5": None, "recall@5": None, "mrr@10": None}
    return {"semantic": semantic, "lexical": lexical}


def _report():
    examples = {q: {"semantic": [f"{q} s{i}" for i in range(5)], "lexical": ["a | b"]}
                for q in EXAMPLE_QUERIES}
    return EvalReport(catalog="abc123", model="all-MiniLM-L6-v2", products=7, category_products=5,
                      ks=KS, modes=_modes(), examples=examples)


def test_metrics_json_shape(tmp_path):
    paths = write_report(_report(), tmp_path)
    body = json.loads(paths["metrics.json"].read_text())
    assert body["catalog"] == "abc123" and body["products"] == 7 and body["category_products"] == 5
    assert body["k"] == [1, 5]
    assert set(body["modes"]) == {"semantic", "lexical"}
    assert set(body["modes"]["semantic"]) == {"self_retrieval@1", "self_retrieval@5", "precision@1",
                                              "precision@5", "recall@1", "recall@5", "mrr@10"}
    assert body["modes"]["semantic"]["precision@5"] == 0.5197  # rounded to 4 places
    assert body["modes"]["semantic"]["recall@5"] == 0.3333
    assert body["modes"]["lexical"]["mrr@10"] is None


def test_report_table_equals_json(tmp_path):
    paths = write_report(_report(), tmp_path)
    body = json.loads(paths["metrics.json"].read_text())
    text = paths["report.md"].read_text()
    header = next(line for line in text.splitlines() if line.startswith("| mode |"))
    keys = [c.strip() for c in header.strip("|").split("|")][1:]
    for mode, values in body["modes"].items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {mode} |"))
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        for key, cell in zip(keys, cells, strict=True):
            expected = values[key]
            assert (cell == "n/a") if expected is None else float(cell) == expected, (mode, key)
    assert metrics_table(_report()) in text


def test_examples_side_by_side(tmp_path):
    text = write_report(_report(), tmp_path)["report.md"].read_text()
    for query in EXAMPLE_QUERIES:
        assert f'### "{query}"' in text
    assert "| 1 | cozy wooden chair for study table s0 | a \\| b |" in text
    assert "| 2 | cozy wooden chair for study table s1 |  |" in text  # lexical had one hit
    assert len(re.findall(r"^\| 5 \|", text, re.M)) == len(EXAMPLE_QUERIES)


def test_files_are_deterministic(tmp_path):
    first = write_report(_report(), tmp_path / "one")
    second = write_report(_report(), tmp_path / "two")
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name
    png = first["metrics.png"].read_bytes()
    assert png.startswith(b"\x89PNG") and b"Software" not in png
