"""Choosing the embedder's backend and precision, and the OpenVINO model cache: no model, no server
(but for the pooling test, which loads the model).

The vectors of each backend and precision against torch fp32 are tests/test_embedder_quality.py's.
"""
from __future__ import annotations

import os
import threading

import pytest

from embedder_service import ov_cache
from embedder_service.config import EmbedderConfig
from embedder_service.precision import CpuFeatures, choose, cpu_features

pytestmark = pytest.mark.timeout(60)

AVX2_ONLY = "fpu sse sse2 avx avx2 fma"
CPUINFO = "processor\t: 0\nflags\t\t: {flags}\nbugs\t\t: none\n\nprocessor\t: 1\nflags\t\t: {flags}\n"


def features(flags: str) -> CpuFeatures:
    return CpuFeatures(frozenset(flags.split()), "test")


# ---- CPU features and precision -------------------------------------------------------------
@pytest.mark.parametrize("flags, native", [
    (AVX2_ONLY, False), (AVX2_ONLY + " avx512f avx512_vnni", False),
    (AVX2_ONLY + " avx512f avx512_bf16", True), (AVX2_ONLY + " amx_tile amx_bf16 amx_int8", True)])
def test_cpuinfo_flags_say_whether_bf16_is_native(tmp_path, flags, native):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(flags=flags))
    found = cpu_features(cpuinfo=path)
    assert found.native_bf16 is native and "avx2" in found.flags and str(path) in found.source


def test_unreadable_cpuinfo_means_no_native_bf16(tmp_path):
    found = cpu_features(cpuinfo=tmp_path / "missing")
    assert not found.native_bf16 and "unreadable" in found.source


@pytest.mark.parametrize("override, native", [("none", False), ("avx2,fma", False),
                                              ("avx512_bf16", True), ("AMX_BF16 avx2", True)])
def test_the_override_replaces_the_cpus_flags(tmp_path, override, native):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(flags=AVX2_ONLY + " avx512_bf16"))
    found = cpu_features(override, cpuinfo=path)
    assert found.native_bf16 is native and "EMBEDDER_CPU_FEATURES" in found.source


def test_auto_is_bf16_only_where_native_and_the_runtime_agrees():
    assert choose("auto", features("avx2 avx512_bf16")).precision == "bf16"
    assert choose("auto", features("amx_bf16")).precision == "bf16"
    assert choose("auto", features(AVX2_ONLY)).precision == "fp32"
    no_runtime = choose("auto", features("avx512_bf16"), runtime_bf16=False, runtime="OpenVINO")
    assert no_runtime.precision == "fp32" and "OpenVINO lists no BF16" in no_runtime.reason
    assert "-> fp32: no native bf16" in choose("auto", features(AVX2_ONLY)).reason


def test_fp32_is_always_fp32_and_bf16_without_native_support_is_refused():
    assert choose("fp32", features("amx_bf16")).precision == "fp32"
    assert choose("bf16", features("avx512_bf16")).precision == "bf16"
    with pytest.raises(SystemExit, match=r"--precision bf16: this CPU has no native bf16 .*use "
                                         r"--precision auto or fp32"):
        choose("bf16", features(AVX2_ONLY))


def test_config_backend_precision_and_their_environment():
    default = EmbedderConfig.from_args([], environ={})
    assert (default.backend, default.precision, default.cache_dir) == ("openvino", "auto", "")
    env = {"EMBEDDER_BACKEND": "torch", "EMBEDDER_PRECISION": "fp32", "EMBEDDER_CPU_FEATURES": "none"}
    config = EmbedderConfig.from_args([], environ=env)
    assert (config.backend, config.precision, config.cpu_features) == ("torch", "fp32", "none")
    assert EmbedderConfig.from_args(["--precision", "bf16"], environ=env).precision == "bf16"


@pytest.mark.parametrize("argv", [["--backend", "onnx"], ["--precision", "int8"],
                                  ["--openvino-threads", "-1"]])
def test_config_rejects_unknown_backends_and_precisions(argv, capsys):
    with pytest.raises(SystemExit):
        EmbedderConfig.from_args(argv, environ={})
    assert "error" in capsys.readouterr().err


# ---- the converted-model cache --------------------------------------------------------------
class FakeOpenVINO:
    """read/convert/save for ov_cache.load_or_convert: counts conversions; 'IR' = a text file."""

    def __init__(self):
        self.conversions = 0

    def convert(self):
        self.conversions += 1
        return "model"

    @staticmethod
    def save(model, xml):
        xml.write_text(model)
        xml.with_suffix(".bin").write_text("weights")

    @staticmethod
    def read(xml):
        text = xml.read_text()
        if text != "model":
            raise RuntimeError("bad IR")
        return text


def fake_model_dir(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"w" * 100)
    return model


def test_cache_converts_once_then_loads(tmp_path):
    fake, cache = FakeOpenVINO(), tmp_path / "cache"
    key = ov_cache.cache_key(str(fake_model_dir(tmp_path)), "2026.4.1")
    model, how = ov_cache.load_or_convert(cache, key, fake.read, fake.convert, fake.save)
    assert model == "model" and how.startswith("converted and cached") and fake.conversions == 1
    model, how = ov_cache.load_or_convert(cache, key, fake.read, fake.convert, fake.save)
    assert model == "model" and how.startswith("loaded from the cache") and fake.conversions == 1
    assert sorted(p.name for p in cache.iterdir()) == [key]  # no temporary directory left


def test_cache_key_changes_with_the_model_files_and_the_openvino_version(tmp_path):
    model = fake_model_dir(tmp_path)
    key = ov_cache.cache_key(str(model), "2026.4.1")
    assert key.startswith("model-") and key == ov_cache.cache_key(str(model), "2026.4.1")
    assert ov_cache.cache_key(str(model), "2026.5.0") != key
    (model / "model.safetensors").write_bytes(b"v" * 101)  # another model in the same place
    assert ov_cache.cache_key(str(model), "2026.4.1") != key
    os.utime(model / "config.json", ns=(1, 1))
    assert ov_cache.cache_key(str(model), "2026.4.1") != key


def test_a_damaged_entry_is_converted_again(tmp_path, caplog):
    fake, cache = FakeOpenVINO(), tmp_path / "cache"
    (cache / "k").mkdir(parents=True)
    (cache / "k" / ov_cache.MODEL_XML).write_text("truncated")
    model, how = ov_cache.load_or_convert(cache, "k", fake.read, fake.convert, fake.save)
    assert model == "model" and how.startswith("converted and cached") and fake.conversions == 1
    assert "unreadable" in caplog.text
    assert fake.read(cache / "k" / ov_cache.MODEL_XML) == "model"


def test_an_entry_left_without_its_model_is_replaced(tmp_path):
    """A directory holding only the tokenizer files (the IR deleted by hand) does not block the
    new IR's rename into place."""
    fake, cache = FakeOpenVINO(), tmp_path / "cache"
    (cache / "k").mkdir(parents=True)
    (cache / "k" / "serving.json").write_text("{}")
    model, how = ov_cache.load_or_convert(cache, "k", fake.read, fake.convert, fake.save)
    assert how.startswith("converted and cached") and fake.read(cache / "k" / ov_cache.MODEL_XML) == "model"
    assert ov_cache.load_or_convert(cache, "k", fake.read, fake.convert, fake.save)[1].startswith("loaded")


def test_an_unwritable_cache_only_costs_the_conversion(tmp_path, caplog):
    fake, blocker = FakeOpenVINO(), tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    model, how = ov_cache.load_or_convert(blocker / "cache", "k", fake.read, fake.convert, fake.save)
    assert model == "model" and how == "converted (not cached)" and "cannot write" in caplog.text
    model, how = ov_cache.load_or_convert(None, "k", fake.read, fake.convert, fake.save)
    assert how == "converted (cache off)" and fake.conversions == 2


def test_two_embedders_converting_at_once_leave_one_complete_entry(tmp_path):
    cache, both_converted = tmp_path / "cache", threading.Barrier(2)
    results = []

    def convert():
        both_converted.wait(10)  # neither finds an entry: both convert, both try to store
        return "model"

    def start():
        results.append(ov_cache.load_or_convert(cache, "k", FakeOpenVINO.read, convert,
                                                FakeOpenVINO.save))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert [model for model, _ in results] == ["model", "model"]
    assert sorted(p.name for p in cache.iterdir()) == ["k"]
    assert FakeOpenVINO.read(cache / "k" / ov_cache.MODEL_XML) == "model"


def test_cache_dir_setting():
    assert ov_cache.resolve_cache_dir("off") is None
    assert str(ov_cache.resolve_cache_dir("/var/cache/recsys")) == "/var/cache/recsys"
    assert ov_cache.default_cache_dir({"XDG_CACHE_HOME": "/x"}).as_posix() == "/x/recsys/openvino"
    assert ov_cache.default_cache_dir({}).as_posix().endswith("/.cache/recsys/openvino")


# ---- the quality bar bites (tests/quality.py; every backend: tests/test_embedder_quality.py) ----
def unit_rows(n: int, seed: int):
    import numpy as np
    x = np.random.default_rng(seed).standard_normal((n, 384))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_the_bar_passes_bf16_like_rounding_and_fails_noise_it_should_not_pass():
    import numpy as np

    from tests import quality
    want = unit_rows(300, 0)
    assert quality.agreement(want * 3.0, want).problems() == []  # scale does not matter
    # bf16 keeps 8 significant bits: rounding each component costs far less than the bar
    bf16 = (want.astype(np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)
    assert quality.agreement(bf16, want).problems() == []
    # noise of mean cosine ~0.9995: every text above 0.999, the catalog mean below 0.9999
    mild = want + unit_rows(300, 1) * 0.03
    got = quality.agreement(mild, want)
    assert got.min_cosine >= quality.MIN_COSINE and got.problems() == [
        f"mean cosine {got.mean_cosine:.6f} < {quality.MEAN_COSINE}"]
    # one text gone wrong among good ones: the minimum catches what the mean hides
    one_bad = want.copy()
    one_bad[7] = unit_rows(1, 2)[0]
    assert quality.agreement(one_bad, want).problems()[0].startswith("minimum cosine")
    with pytest.raises(ValueError):
        quality.agreement(want[:5], want)


def test_top_k_score_errors_follow_the_references_top_k():
    import numpy as np

    from tests import quality
    catalog = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
    query = np.array([[1.0, 0.0]])  # reference scores 1.0, 0.8, 0.6, 0.0: top 2 = rows 0, 1
    same = quality.top_k_score_errors(catalog, query, catalog, query, k=2)
    assert same.max_error.tolist() == [0.0] and same.same_top_k.tolist() == [True]
    # row 3 moves a lot but is outside the top 2: only rows 0 and 1 count
    moved = catalog.copy()
    moved[1, 0] += 0.002
    moved[3, 0] = 0.5
    got = quality.top_k_score_errors(moved, query, catalog, query, k=2)
    assert np.isclose(got.max_error[0], 0.002) and got.same_top_k.tolist() == [True]
    # row 2 overtakes row 1: the order changed, the errors are still the reference top 2's
    swapped = catalog.copy()
    swapped[2, 0] = 0.9
    got = quality.top_k_score_errors(swapped, query, catalog, query, k=2)
    assert got.max_error.tolist() == [0.0] and got.same_top_k.tolist() == [False]
    # one row per query, in the queries' order
    two = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert quality.top_k_score_errors(moved, two, catalog, two, k=2).max_error.shape == (2,)
    with pytest.raises(ValueError):
        quality.top_k_score_errors(catalog[:3], query, catalog, query)


# ---- pooling outside torch ----------------------------------------------------------------------
@pytest.mark.slow
def test_numpy_mean_pooling_is_the_models_own_pooling():
    """OpenVINO's hidden states are pooled in numpy only where the model's Pooling is plain mean
    pooling, and then to torch's result within float32 rounding (padded rows included)."""
    import numpy as np
    from embedder_service.backend import SentenceTransformerBackend
    from embedder_service.openvino_backend import mean_pool, plain_mean_pooling

    backend = SentenceTransformerBackend()
    assert plain_mean_pooling(backend.modules[1:])
    Pooling = type(backend.modules[1])
    rng = np.random.default_rng(7)
    hidden = rng.normal(size=(4, 9, backend.dimension)).astype(np.float32)
    mask = np.zeros((4, 9), dtype=np.int64)
    for row, length in enumerate((9, 1, 5, 3)):
        mask[row, :length] = 1
    hidden[mask == 0] = 1e3  # padding must not leak into the mean
    np.testing.assert_allclose(mean_pool(hidden, mask), backend.pool(hidden, mask), rtol=0, atol=2e-6)
    assert not plain_mean_pooling([Pooling(backend.dimension, pooling_mode="cls")])
    assert not plain_mean_pooling([Pooling(backend.dimension, pooling_mode="mean", include_prompt=False)])
    assert not plain_mean_pooling(backend.modules)  # a transformer first: not pooling alone


@pytest.mark.parametrize("argv, says", [
    (["--backend", "torch"], "--backend torch keeps no converted model: nothing to prepare"),
    (["--cache-dir", "off"], "--cache-dir off: there is no cache to prepare")])
def test_prepare_cache_refuses_when_there_is_nothing_to_prepare(argv, says, capsys):
    from embedder_service.prepare_cache import main
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"prepare_cache: {says}"
