"""docker-compose.yml gives each of our services time to stop as it should: Docker's default
10 s before SIGKILL was shorter than the embedder's drain (30 s) and the index's drain plus its
shutdown compaction."""
from __future__ import annotations

import pytest
import yaml

from embedder_service.config import EmbedderConfig
from index_service.config import IndexConfig
from tests.procs import ROOT


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _seconds(duration: str) -> float:
    """A compose duration as we write them: "45s", "2m"."""
    value, unit = float(duration[:-1]), duration[-1]
    return value * {"s": 1, "m": 60}[unit]


@pytest.mark.parametrize("config_class, prefix", [(EmbedderConfig, "EMBEDDER_"),
                                                  (IndexConfig, "INDEX_")])
def test_docker_waits_for_the_drain_and_the_compaction_before_sigkill(compose, config_class,
                                                                      prefix):
    """Docker's default stop timeout (10 s) was shorter than the embedder's drain (30 s) and
    the index's drain plus its shutdown compaction."""
    ours = {name: s for name, s in compose["services"].items()
            if s.get("command", [None, None, ""])[2] == prefix.lower()[:-1] + "_service"}
    assert ours
    for name, service in ours.items():
        env = service["environment"]
        grace = float(env.get(f"{prefix}GRACE_S", config_class.grace_s))
        compaction = 60.0 if f"{prefix}DATA_DIR" in env else 0.0  # the FAISS store compacts
        assert _seconds(service["stop_grace_period"]) >= grace + compaction + 15.0, name
