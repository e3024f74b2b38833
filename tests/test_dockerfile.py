"""docker/Dockerfile, read (no Docker engine here: the image has never been built, see
docs/limits.md): CPU torch from pinned requirements, the model checked offline, and the model
cache prepared where the compose embedder reads it. tests/test_compose_env.py runs the same
prepare step before the compose embedder starts."""
import re

import pytest
import yaml

from tests.compose_translation import DOCKERFILE, PREPARE_CACHE
from tests.procs import ROOT


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_dockerfile_installs_cpu_torch_and_runs_offline():
    text = DOCKERFILE.read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "--extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt" in text
    assert "HF_HUB_OFFLINE=1" in text and "TRANSFORMERS_OFFLINE=1" in text
    assert "torch==2.13.0" in (ROOT / "requirements.txt").read_text()
    assert "COPY docker/healthcheck.py" in text


def test_the_image_prepares_the_model_cache_the_compose_embedder_reads(compose):
    """The image converts the model into EMBEDDER_CACHE_DIR after its code is in, as the user
    that runs it; the compose file reads the same directory, on a volume that a new volume's
    first mount fills with the image's content (a named volume, not a host directory)."""
    text = DOCKERFILE.read_text()
    cache_dir = re.search(r"^ENV EMBEDDER_CACHE_DIR=(\S+)$", text, re.M).group(1)
    embedder = compose["services"]["embedder"]
    assert embedder["environment"]["EMBEDDER_CACHE_DIR"] == cache_dir
    source = next(v.split(":")[0] for v in embedder["volumes"] if cache_dir.startswith(
        v.split(":")[1] + "/"))
    assert source in compose["volumes"] and not source.startswith((".", "/")), source
    prepare = text.index(f"RUN {' '.join(PREPARE_CACHE)}")
    assert text.index("COPY embedder_service/") < text.index("USER recsys") < prepare
