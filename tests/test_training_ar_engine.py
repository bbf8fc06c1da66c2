"""AREngine (the AR twin's engine) on a tiny randomly initialised Llama saved with the project's tokenizer."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # training/ is a folder of scripts run from the repository root, not installed

from engine.ar_engine import AREngine  # noqa: E402
from engine.types import Cancelled, Candidates, EngineConfig, ModelLoadError  # noqa: E402
from training.common import ar_config  # noqa: E402


@pytest.fixture(scope="module")
def twin_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ar-twin")
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "training" / "tokenizer")
    torch.manual_seed(0)
    LlamaForCausalLM(ar_config("tiny", len(tokenizer))).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "ar_infill.json").write_text(json.dumps({"layout": "psm-sentinels", "max_prompt_tokens": 48}))
    return folder


@pytest.fixture(scope="module")
def engine(twin_dir):
    return AREngine(EngineConfig(model=str(twin_dir), threads=1))


def test_fill_answers_one_greedy_candidate_within_the_limit(engine):
    result = engine.fill("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n", max_new_tokens=10)
    assert isinstance(result, Candidates) and result.layout == "psm-sentinels" and len(result.items) == 1
    best = result.best
    assert best.length <= 10 and best.steps <= 11 and 0.0 <= best.confidence <= 1.0
    assert best.ended or best.length == 10
    assert {"encode_ms", "denoise_ms", "total_ms", "prefill_ms", "decode_ms"} <= set(result.timings)
    again = engine.fill("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n", max_new_tokens=10)
    assert again.best.text == best.text  # greedy: the same input gives the same middle


def test_a_tokenizer_without_eos_ends_at_the_configs_end_of_text(twin_dir, tmp_path):
    folder = tmp_path / "no-eos"
    folder.mkdir()
    for part in twin_dir.iterdir():
        (folder / part.name).write_bytes(part.read_bytes())
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    settings.pop("eos_token", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    twin = AREngine(EngineConfig(model=str(folder), threads=1))
    assert twin.tokenizer.eos_token_id is None
    assert twin.eos_id == twin.model.config.eos_token_id == 1


def test_a_configured_context_replaces_the_folder_s(twin_dir):
    wider = AREngine(EngineConfig(model=str(twin_dir), threads=1, max_prompt_tokens=96))
    assert wider.max_prompt_tokens == 96 and wider.describe()["max_prompt_tokens"] == 96
    prefix = "".join(f"value_{i} = {i}\n" for i in range(300))
    assert wider.fill(prefix, "\n", max_new_tokens=4).timings["prompt_tokens"] == 96


def test_lengths_ask_for_the_longest_row_capped_by_max_new_tokens(engine):
    result = engine.fill("x = ", "\n", max_new_tokens=6, lengths=[2, 40])
    assert result.best.canvas_length == 6 and result.best.length <= 6


def test_long_context_is_trimmed_to_what_the_model_was_trained_for(engine):
    prefix = "".join(f"value_{i} = {i}\n" for i in range(300))
    suffix = "".join(f"other_{i} = {i}\n" for i in range(300))
    assert engine.count_tokens(prefix) > 1000 and engine.max_prompt_tokens == 48
    result = engine.fill(prefix, suffix, max_new_tokens=4)
    assert result.timings["prompt_tokens"] == 48
    fp, fs, fm = engine.fim_ids
    prompt = engine._prompt(prefix, suffix)
    assert prompt[0] == fp and prompt[-1] == fm and len(prompt[prompt.index(fs) + 1:-1]) == (48 - 3) // 3
    assert engine.tokenizer.decode(prompt[1:prompt.index(fs)]).endswith("value_299 = 299\n")  # newest prefix kept


def test_cancel_stops_between_tokens(engine):
    with pytest.raises(Cancelled):
        engine.fill("x = ", "\n", max_new_tokens=8, cancel=lambda: True)


def test_code_that_spells_a_special_token_stays_text(engine):
    assert engine.count_tokens("<eos>") > 1


def test_a_missing_or_wrong_folder_is_a_clear_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no AR twin"):
        AREngine(EngineConfig(model=str(tmp_path / "nowhere")))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="could not load the AR twin"):
        AREngine(EngineConfig(model=str(tmp_path)))
