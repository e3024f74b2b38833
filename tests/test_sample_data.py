"""data/product_lines.csv is what its generator writes: the committed file and its source
(data/product_lines_source.py) cannot drift apart."""
from __future__ import annotations

import subprocess
import sys

from tests.procs import ROOT


def test_the_generator_rewrites_product_lines_csv_byte_for_byte(tmp_path):
    out = tmp_path / "product_lines.csv"
    done = subprocess.run([sys.executable, str(ROOT / "data" / "make_product_lines.py"), str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "209 products" in done.stderr
    assert out.read_bytes() == (ROOT / "data" / "product_lines.csv").read_bytes()
