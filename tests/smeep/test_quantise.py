"""`smeep quantise`: the GGUF header reader, the wheel's choice, and the real mode on the shipped model.

The real test quantises the demo model (Gemma 3 270M, Q4_K_M, from the controller cache roles/llamacpp fills) to
Q4_0, Q4_K_M and Q8_0 with the llama-cpp-python wheel roles/llamacpp built and cached for the crush node, in a venv
of its own created offline from the cached wheels. It skips, saying what is missing, when the wheel, the model or
the wheelhouse is not on this machine: `make test` runs pytest before the Molecule stage that builds the wheel.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess

import pytest
from smeep import cli, quantise

from tests.smeep.test_real_engine import gguf

TYPES = ["Q4_0", "Q4_K_M", "Q8_0"]


def _gguf_bytes(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A GGUF v3 header with the given (key, value type, encoded value) pairs and no tensors."""
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(entries))
    for key, kind, value in entries:
        out += struct.pack("<Q", len(key)) + key.encode() + struct.pack("<I", kind) + value
    return out


def _s(text: str) -> bytes:
    return struct.pack("<Q", len(text.encode())) + text.encode()


def test_gguf_reader_skips_arrays_and_strings_to_the_file_type(tmp_path):
    tokens = b"".join(_s(t) for t in ("<pad>", "<eos>", "hello"))
    header = _gguf_bytes([
        ("general.architecture", 8, _s("gemma3")),
        ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3) + tokens),  # an array of strings
        ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 3) + struct.pack("<3f", 0.0, 1.0, 2.0)),
        ("gemma3.context_length", 4, struct.pack("<I", 32768)),
        ("general.name", 8, _s("Tiny")),
        ("general.file_type", 4, struct.pack("<I", 15)),
        ("general.alignment", 4, struct.pack("<I", 32)),
    ])  # fmt: skip
    path = tmp_path / "tiny.gguf"
    path.write_bytes(header)
    found = quantise.gguf_metadata(path)
    assert found == {"general.file_type": 15, "general.name": "Tiny"}
    assert quantise.ftype_name(found["general.file_type"]) == "Q4_K_M"
    (tmp_path / "not.gguf").write_bytes(b"GGML" + bytes(20))
    with pytest.raises(quantise.QuantiseError, match="not a GGUF"):
        quantise.gguf_metadata(tmp_path / "not.gguf")


def test_find_wheel_takes_this_machine_and_a_cpu_level_it_has(tmp_path, monkeypatch):
    root = tmp_path / "wheels" / "llama-cpp-python"
    for version, key, baseline in (
        ("0.3.36", "debian12-x86_64-py311-x86-64-v3-aaaa", "x86-64-v3"),
        ("0.3.36", "debian12-aarch64-py311-armv8-a-bbbb", "armv8-a"),
        ("0.3.9", "debian12-x86_64-py311-x86-64-cccc", "x86-64"),
    ):
        (root / version / key).mkdir(parents=True)
        (root / version / key / f"llama_cpp_python-{version}-py3-none-linux_x86_64.whl").write_bytes(b"")
        (root / version / key / "build-info.json").write_text(json.dumps({"cpu_baseline": baseline}))
    monkeypatch.setattr(quantise.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(quantise, "cpu_flags", lambda: ["avx", "avx2", "bmi2", "f16c", "fma", "sse4_2"])
    assert quantise.find_wheel(tmp_path).parent.name.endswith("x86-64-v3-aaaa")  # the newest version
    monkeypatch.setattr(quantise, "cpu_flags", lambda: ["sse4_2"])  # a CPU without AVX2: the portable wheel
    assert quantise.find_wheel(tmp_path).parent.name.endswith("x86-64-cccc")
    monkeypatch.setattr(quantise.platform, "machine", lambda: "riscv64")
    assert quantise.find_wheel(tmp_path) is None


def test_unknown_type_and_missing_file_stop_with_a_reason(tmp_path, capsys):
    assert cli.main(["quantise", "--gguf", str(tmp_path / "x.gguf"), "--types", "Q4_0,Q9_9"]) == 1
    assert "Q9_9" in capsys.readouterr().err
    assert cli.main(["quantise", "--gguf", str(tmp_path / "x.gguf")]) == 1
    assert "no such GGUF file" in capsys.readouterr().err
    (tmp_path / "x.gguf").write_bytes(b"GGUF")
    assert cli.main(["quantise", "--gguf", str(tmp_path / "x.gguf"), "--prompt-tokens", "2000"]) == 1
    assert "--n-ctx 2048" in capsys.readouterr().err


def test_the_venv_is_never_made_without_a_wheelhouse(tmp_path):
    wheel = tmp_path / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
    wheel.write_bytes(b"")
    with pytest.raises(quantise.QuantiseError, match="nothing is downloaded"):
        quantise.ensure_venv(tmp_path / "venv", wheel, [tmp_path / "no-wheelhouse"])
    assert not (tmp_path / "venv").exists()


def missing(why: str) -> None:
    """Skip a real-model test whose input is not cached yet; in make test's stage after molecule-default
    (CLAW_ENGINE_CACHE_REQUIRED=1), where the cache must hold it, fail instead."""
    if os.environ.get("CLAW_ENGINE_CACHE_REQUIRED") == "1":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="module")
def quantised(tmp_path_factory):
    wheel = quantise.find_wheel()
    if wheel is None:
        missing(f"no llama-cpp-python wheel in {quantise.cache_dir() / 'wheels'} (roles/llamacpp builds it)")
    model = gguf(tmp_path_factory.mktemp("model"))
    if model is None:
        missing("Gemma 3 270M is not in the controller cache (roles/llamacpp assembles it)")
    venv = quantise.cache_dir() / "smeep-quant-venv"
    if not (venv / "bin" / "python").exists() and not (quantise.cache_dir() / "lock-wheels").is_dir():
        missing(f"no wheelhouse for llama-cpp-python's dependencies in {quantise.cache_dir() / 'lock-wheels'}")
    out = tmp_path_factory.mktemp("quantise")
    argv = ["quantise", "--gguf", str(model), "--types", ",".join(TYPES), "--out", str(out), "--chat-format", "gemma",
            "--tasks", "t1-math,t2-list", "--max-tokens", "16", "--prompt-tokens", "64", "--gen-tokens", "16",
            "--speed-trials", "2", "--n-ctx", "1024", "--no-progress"]  # fmt: skip
    assert cli.main(argv) == 0
    return out, model, json.loads((out / "smeep-quantise.json").read_text())


@pytest.mark.engine_cache
def test_quantise_writes_three_files_of_the_asked_types(quantised):
    out, model, doc = quantised
    assert doc["schema"] == "smeep-quantise/1"
    assert doc["source"]["type"] == "Q4_K_M" and doc["requantised_from"] == "Q4_K_M"
    assert list(doc["quantisations"]) == TYPES
    python = quantise.cache_dir() / "smeep-quant-venv" / "bin" / "python"
    for kind in TYPES:
        entry = doc["quantisations"][kind]
        path = out / entry["file"]
        assert path.is_file() and path.stat().st_size == entry["size_bytes"] > 100 << 20
        # The header says the type asked for, as this reader and llama.cpp's own loader read it.
        assert quantise.gguf_metadata(path)["general.file_type"] == quantise.FTYPES[kind] == entry["file_type"]
        loaded = subprocess.run(
            [str(python), "-c", "import sys, llama_cpp; m = llama_cpp.Llama(sys.argv[1], vocab_only=True, "
             "verbose=False); print(m.metadata['general.file_type'])", str(path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert int(loaded.stdout.strip()) == quantise.FTYPES[kind]
        assert entry["requantised_from"] == "Q4_K_M"
    sizes = {kind: doc["quantisations"][kind]["size_bytes"] for kind in TYPES}
    assert sizes["Q4_0"] < sizes["Q8_0"] and sizes["Q4_K_M"] < sizes["Q8_0"]
    assert model.is_file()  # the source is left as it was


@pytest.mark.engine_cache
def test_quantise_measures_speed_memory_and_score(quantised):
    out, _, doc = quantised
    for kind in TYPES:
        entry = doc["quantisations"][kind]
        speed = entry["speed"]
        assert len(speed["runs"]) == 2
        for run in speed["runs"]:
            assert run["prompt_tokens"] == 64 and run["gen_tokens"] >= 1
        assert speed["prompt_tok_s"]["median"] > 0 and speed["gen_tok_s"]["median"] > 0
        assert speed["prompt_tok_s"]["min"] <= speed["prompt_tok_s"]["median"] <= speed["prompt_tok_s"]["max"]
        # The process holds the model: more than before it was loaded, and at least a good part of the file.
        assert speed["rss_mib"] > speed["base_rss_mib"] + entry["size_bytes"] / (1 << 20) / 2
        score = entry["score"]
        assert score["eligible"] == 2 and 0 <= score["passes"] <= 2
        ladder = json.loads((out / score["results"]).read_text())
        assert [t["id"] for t in ladder["tests"]] == ["t1-math", "t2-list"]
        assert ladder["engine"]["kind"] == "openai"
        assert score["server_rss_mib"] > 100
    assert doc["llama_cpp"]["llama_cpp_python"] and doc["llama_cpp"]["system_info"]
    assert doc["cpu_flags"] == quantise.cpu_flags()
    assert len(doc["load_average"]["before"]) == len(doc["load_average"]["after"]) == 3


@pytest.mark.engine_cache
def test_quantise_renders_the_comparison_table(quantised):
    out, _, doc = quantised
    markdown = (out / "smeep-quantise.md").read_text()
    assert "requantised from Q4_K_M" in markdown
    assert "| type | file MiB | prompt tok/s | gen tok/s | vs Q4_K_M prompt / gen | RSS MiB | score |" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| Q")]
    assert [row.split("|")[1].strip() for row in rows] == TYPES
    reference = doc["quantisations"]["Q4_K_M"]["speed"]
    for row, kind in zip(rows, TYPES, strict=True):
        entry = doc["quantisations"][kind]
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        assert cells[1] == f"{entry['size_bytes'] / (1 << 20):,.1f}"
        assert cells[3].startswith(f"{entry['speed']['gen_tok_s']['median']:,.1f} (")
        gen = entry["speed"]["gen_tok_s"]["median"] / reference["gen_tok_s"]["median"]
        assert cells[4].endswith(f" / {gen:.2f}")
        assert cells[-1] == f"{entry['score']['passes']}/2"
    assert rows[1].split("|")[5].strip() == "1.00 / 1.00"
    assert doc["llama_cpp"]["llama_cpp_python"] in markdown
