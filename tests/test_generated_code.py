"""client/generated/ must match what `make protos` makes from protos/ right now."""
import subprocess
import sys

from tests.procs import ROOT


def test_generated_code_is_fresh():
    result = subprocess.run([sys.executable, "scripts/gen_protos.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stale_code_is_detected(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_protos
    finally:
        sys.path.pop(0)
    fresh = tmp_path / "fresh"
    gen_protos.generate(fresh)
    stale = tmp_path / "stale"
    gen_protos.generate(stale)
    assert gen_protos.differences(fresh, stale) == []
    target = next(stale.rglob("index_pb2.py"))
    target.write_text(target.read_text() + "\n# hand edit\n")
    assert gen_protos.differences(fresh, stale) == ["differs: " + str(target.relative_to(stale))]
