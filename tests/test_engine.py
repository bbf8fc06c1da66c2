"""Engine tests on a tiny random-weight DiffusionGemma (the real transformers class) saved and loaded from disk."""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
import shutil
import socket
import warnings
import weakref
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion

from engine import Cancelled, EngineConfig, EngineError, InfillEngine, ModelLoadError, loading, memory
from engine.compat import cache_keyword, with_cache
from engine.configs import tiny_config
from engine.infill_engine import WARM_PLANS, bucket
from engine.loading import DEFAULT_MODEL_DIR
from engine.masks import decoder_cache, decoder_masks
from engine.sampler import MIN_BUDGET_STEPS, SamplerSettings, denoise, entropy_bound_accept, propose, renoise
from engine.types import Cancelled
from engine_fixtures import CODE_TOKENIZER_DIR, tiny_model_dir  # noqa: F401 (the GPU runbook: --noconftest)


def encoded_for_decoder(engine: InfillEngine, prompt: list[int], batch: int):
    """What the dynamic-path decoder reads for `prompt`, repeated for `batch` canvas rows, encoded and counted as a
    request's prompt is (InfillEngine._run)."""
    engine._count_reuse(len(prompt), engine._keep_prompt(prompt))
    return decoder_cache(engine.prompt_cache, engine.model.config.text_config, batch)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return InfillEngine(EngineConfig(model=str(tiny_model_dir), max_steps=6, threads=1))


def recording_decoder_step(engine, batch: int, canvas_len: int):
    """The real decoder step on a fixed 4-token prompt, plus the list of every canvas it was given."""
    real_step = engine._decoder_step(encoded_for_decoder(engine, [5, 6, 7, 8], batch=batch), 4, canvas_len)
    seen = []

    def recording_step(current, sc_logits):
        seen.append(current.clone())
        return real_step(current, sc_logits)

    return recording_step, seen


def test_fill_returns_one_candidate_per_length_limit(engine):
    result = engine.fill("def add(a, b):\n    return ", "\n", lengths=[4, 8, 12])
    assert len(result.items) == 3
    lengths = sorted(item.length for item in result.items)
    assert lengths[0] <= 4 and lengths[1] <= 8 and lengths[2] <= 12  # each row respects its own limit
    assert all(item.canvas_length == 16 for item in result.items)  # 12 + <eos> fits the 16 bucket
    assert all(0.0 <= item.confidence <= 1.0 for item in result.items)
    assert result.layout == "spm-sentinels"
    assert result.timings["prompt_tokens"] > 3 and result.timings["total_ms"] > 0
    assert "length" in result.reason


@pytest.mark.parametrize("fast_path", ["off", "static"])
def test_the_kv_cache_is_handed_over_under_the_installed_transformers_name(engine, fast_path):
    """transformers 5.24 renamed the forwards' `past_key_values` to `cache` (the old name warns, and is gone in
    5.40); the engine must use whichever name the installed release takes, on both paths, encoder and decoder."""
    from transformers import DiffusionGemmaForBlockDiffusion
    takes = inspect.signature(DiffusionGemmaForBlockDiffusion.forward).parameters
    assert cache_keyword(engine.model) in takes and cache_keyword(engine.model.model.encoder) in takes
    fresh = InfillEngine(EngineConfig(model=engine.loaded.source, max_steps=3, threads=1, fast_path=fast_path),
                         loaded=engine.loaded)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # a renamed-argument warning would now fail the fill
        result = fresh.fill("def add(a, b):\n    return ", "\n", lengths=[4], seed=1)
    assert len(result.items) == 1


def test_same_seed_same_text_and_other_seed_differs(engine):
    first = engine.fill("x = ", "\n", lengths=[12], seed=7)
    again = engine.fill("x = ", "\n", lengths=[12], seed=7)
    other = [engine.fill("x = ", "\n", lengths=[12], seed=s).best.text for s in (8, 9, 10)]
    assert first.best.text == again.best.text
    assert any(text != first.best.text for text in other)


def texts_by_limit(engine, monkeypatch, *fills) -> list[dict[int, str]]:
    """For each fill (prefix, suffix, lengths, seed): every row's text, keyed by the row's length limit."""
    candidate, texts = engine._candidate, []

    def recorded(tokens, position_entropy, free, *args):
        item = candidate(tokens, position_entropy, free, *args)
        texts[-1][free] = item.text
        return item

    monkeypatch.setattr(engine, "_candidate", recorded)
    for prefix, suffix, lengths, seed in fills:
        texts.append({})
        engine.fill(prefix, suffix, lengths=lengths, seed=seed)
    return texts


@pytest.mark.parametrize("path", ["engine", "static_engine"])
def test_a_row_s_text_depends_on_the_seed_and_its_limit_not_on_the_rows_beside_it(path, request, monkeypatch):
    """Every random draw came from one generator of shape (rows, canvas): a row's draws depended on how many rows
    ran beside it, so fill(lengths=[12], seed=3) wrote other text than the 12-row of fill(lengths=[6, 12], seed=3)."""
    engine = request.getfixturevalue(path)
    prefix, suffix = "def f(x):\n    return ", "\n"
    for seed in (3, 4):
        alone, beside_shorter, beside_longer, among_three = texts_by_limit(
            engine, monkeypatch, (prefix, suffix, [12], seed), (prefix, suffix, [6, 12], seed),
            (prefix, suffix, [12, 15], seed), (prefix, suffix, [4, 9, 12], seed))
        assert alone[12] == beside_shorter[12] == beside_longer[12] == among_three[12]


def test_prompt_is_trimmed_to_the_trained_context(engine):
    result = engine.fill("a = 1\n" * 200, "b = 2\n" * 200, lengths=[4])
    assert result.timings["prompt_tokens"] <= 64


def test_pinned_positions_never_change(engine):
    torch.manual_seed(0)
    B, C, V = 2, 16, engine.vocab_size
    generator = torch.Generator().manual_seed(3)
    canvas = torch.randint(0, V, (B, C), generator=generator)
    pinned = torch.zeros(B, C, dtype=torch.bool)
    pinned[:, 10:] = True
    pinned[0, 2] = True
    fixed = canvas.clone()
    recording_step, seen = recording_decoder_step(engine, B, C)

    settings = SamplerSettings(steps=8, stop_entropy=0.0)
    result = denoise(recording_step, canvas, pinned, settings, V, generator)
    assert len(seen) == 8
    for current in seen:
        assert torch.equal(current[pinned], fixed[pinned])
    assert torch.equal(result.tokens[pinned], fixed[pinned])
    assert result.tokens.shape == (B, C) and result.confidence.shape == (B, C)
    assert (result.steps == 8).all()
    # the free positions really were denoised: the canvas changed between steps
    assert any(not torch.equal(a[~pinned], b[~pinned]) for a, b in zip(seen, seen[1:]))


def test_entropy_bound_keeps_the_most_certain_tokens_only():
    entropy = torch.tensor([[0.5, 0.01, 0.02, 3.0, 0.04]])
    pinned = torch.tensor([[False, False, False, True, False]])
    accept = entropy_bound_accept(entropy, pinned, bound=0.05)
    # sorted free entropies 0.01, 0.02, 0.04, 0.5: cumsum minus self = 0, .01, .03, .07 -> first three kept
    assert accept.tolist() == [[False, True, True, True, True]]


def test_renoise_touches_only_free_positions():
    generator = torch.Generator().manual_seed(0)
    canvas = torch.arange(64).view(1, 64)
    pinned = torch.zeros(1, 64, dtype=torch.bool)
    pinned[0, :32] = True
    assert torch.equal(renoise(canvas, 0.0, pinned, 4096, generator), canvas)
    noisy = renoise(canvas, 1.0, pinned, 4096, generator)
    assert torch.equal(noisy[0, :32], canvas[0, :32])
    assert (noisy[0, 32:] != canvas[0, 32:]).sum() > 24


def test_rewrite_starts_from_the_original(engine):
    original = "for i in range(10):\n    print(i)\n"
    light = engine.rewrite("", "", original, strength=0.05, seed=1)
    assert light.best is not None and light.best.canvas_length >= 16
    assert "strength 0.05" in light.reason
    noted = engine.rewrite("", "", original, strength=0.5, instruction="make it faster", seed=1)
    assert "instruction" in noted.reason


def test_a_light_rewrite_keeps_the_users_tokens_the_model_does_not_replace(engine, monkeypatch):
    """Uniform noise: a rejected position of a fill gets fresh noise, but a rewrite's original token that renoising
    left alone stays until the model accepts another there. Before, the first step renoised every position it did
    not accept, so at strength 0.05 the tiny model read random tokens from its second step on: a light rewrite
    was a fresh fill of the selection's length."""
    seen = []
    decoder_step = engine._decoder_step

    def watched(*args, **kwargs):
        step = decoder_step(*args, **kwargs)

        def recorded(canvas, sc_logits):
            seen.append(canvas[0].clone())
            return step(canvas, sc_logits)
        return recorded

    monkeypatch.setattr(engine, "_decoder_step", watched)
    original = "for value in values:\n    total = total + value * weight\n"
    ids = torch.tensor(engine._encode_text(original))
    engine.rewrite("def f(values, weight):\n    total = 0\n    ", "    return total\n", original, strength=0.05,
                   seed=4)
    assert engine.mask_id is None and len(seen) >= 2
    survived = [int((canvas[:len(ids)] == ids).sum()) for canvas in seen]
    assert survived[0] >= len(ids) - 3, survived            # renoising at 0.05 touched few
    assert survived[1] >= survived[0] - 3, (len(ids), survived)   # and the first step replaced no more than it took


def test_a_rewrite_keeps_no_token_holding_part_of_a_character(engine, monkeypatch):
    """Byte-level tokens split `é` and `😋` into pieces: one piece kept beside another the model rewrote made bytes
    that are not UTF-8, and the whole rewrite was refused (a pytest-lsp test's docstring with `é` in it)."""
    seen = {}
    run = engine._run

    def watched(prompt, canvas, pinned, *args, kept=None, **kwargs):
        seen["kept"] = kept[0].clone()
        return run(prompt, canvas, pinned, *args, kept=kept, **kwargs)

    monkeypatch.setattr(engine, "_run", watched)
    original = "x = 'valués 😋 ok'\n"
    ids = engine._encode_text(original)
    pieces = ["\ufffd" in engine.tokenizer.decode([t]) for t in ids]
    assert any(pieces) and not all(pieces)
    engine.rewrite("", "", original, strength=0.05, seed=1)   # the least renoising: most whole tokens are kept
    kept = seen["kept"][:len(ids)].tolist()
    assert not any(k and piece for k, piece in zip(kept, pieces)), (kept, pieces)
    assert sum(kept) >= pieces.count(False) - 2, (kept, pieces)


def test_denoise_leaves_kept_tokens_until_a_sample_is_accepted_there():
    """With uniform logits the entropy bound accepts one position a step; the other kept positions keep their
    tokens, on the canvas and in the answer, and a position once accepted is the model's."""
    vocab, C = 50, 6
    seen = []

    def flat(canvas, sc_logits):
        seen.append(canvas.clone())
        return torch.zeros(1, C, vocab)

    start = torch.arange(10, 10 + C).view(1, C)
    settings = SamplerSettings(steps=3, stop_entropy=0.0)
    kept = torch.ones(1, C, dtype=torch.bool)
    result = denoise(flat, start, torch.zeros(1, C, dtype=torch.bool), settings, vocab,
                     torch.Generator().manual_seed(0), kept=kept)
    for step, canvas in enumerate(seen):
        assert int((canvas == start).sum()) >= C - step, (step, canvas, start)
    # the answer keeps them too: the model changed only what it accepted (its argmax of flat logits is token 0)
    assert int((result.tokens == start).sum()) >= C - settings.steps, result.tokens
    seen.clear()
    denoise(flat, start, torch.zeros(1, C, dtype=torch.bool), settings, vocab, torch.Generator().manual_seed(0))
    assert int((seen[1] == start).sum()) <= 2   # a fill's rejected positions: fresh noise


def test_a_rewrite_is_told_where_it_must_end(engine, monkeypatch):
    """After its room to grow the canvas holds <eos> then padding, pinned, as a fill's row does. Before, in the
    prompt-sentinel layout nothing was pinned: renoising scattered random tokens there, and a rewrite a little
    longer than the original was cut at the room's end."""
    seen = {}
    run = engine._run

    def watched(prompt, canvas, pinned, *args, **kwargs):
        seen["canvas"], seen["pinned"] = canvas[0].clone(), pinned[0].clone()
        return run(prompt, canvas, pinned, *args, **kwargs)

    monkeypatch.setattr(engine, "_run", watched)
    original = "total = total + value * weight\n"
    result = engine.rewrite("", "", original, strength=1.0, seed=3)
    assert engine.layout == "spm-sentinels"
    length = len(engine._encode_text(original))
    free = length + max(4, length // 4)
    canvas, pinned = seen["canvas"], seen["pinned"]
    assert not pinned[:free].any() and pinned[free:].all()
    assert canvas[free] == engine.eos_id and (canvas[free + 1:] == engine.pad_id).all()
    assert result.best.length <= free


def test_a_masked_rewrite_may_grow_into_its_room(tiny_model_dir, monkeypatch):
    """Masked noise keeps what renoising left unmasked. It kept the <eos> and padding of the room to grow as well:
    an <eos> kept right after the original capped the rewrite at the original's length. The room is now always
    masked, for the model to fill, and only original tokens left unmasked are kept."""
    masked = InfillEngine(EngineConfig(model=str(tiny_model_dir), noise="masked", max_steps=6, threads=1))
    mask, seen, run = masked.mask_id, {}, masked._run

    def watched(prompt, canvas, pinned, *args, **kwargs):
        seen["canvas"], seen["pinned"] = canvas[0].clone(), pinned[0].clone()
        return run(prompt, canvas, pinned, *args, **kwargs)

    monkeypatch.setattr(masked, "_run", watched)
    original = "total = a + b + c"
    length = len(masked._encode_text(original))
    free = length + max(4, length // 4)
    for seed, strength in ((0, 0.05), (1, 0.5), (2, 0.5)):
        result = masked.rewrite("def f(a, b, c):\n    ", "\n", original, strength=strength, seed=seed)
        canvas, pinned = seen["canvas"], seen["pinned"]
        assert (canvas[length:free] == mask).all() and not pinned[length:free].any()   # the room: the model's
        assert torch.equal(pinned[:length], canvas[:length] != mask)                    # kept: what stayed
        assert pinned[free:].all() and canvas[free] == masked.eos_id
        assert result.best.length <= free


@pytest.mark.parametrize("strength", [math.nan, math.inf, -math.inf])
def test_a_strength_that_is_not_a_number_is_a_clear_error(engine, strength):
    with pytest.raises(EngineError, match="strength"):
        engine.rewrite("", "", "x = 1\n", strength=strength, seed=1)


def test_a_selection_longer_than_the_canvas_is_refused_not_cut(engine):
    """Cutting the original to the canvas would replace the whole selection with its head: its tail would be lost."""
    original = "".join(f"value_{i} = compute({i})\n" for i in range(12))
    assert engine.count_tokens(original) > engine.loaded.canvas_length
    with pytest.raises(EngineError, match="too long to rewrite"):
        engine.rewrite("", "", original, strength=0.05, seed=1)
    assert engine.rewrite("", "", "x = 1\n", strength=0.05, seed=1).best is not None   # the engine lives on


def test_cancel_stops_between_steps(engine):
    from engine import Cancelled

    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        engine.fill("x = ", "", lengths=[8], cancel=cancel)
    assert len(calls) == 3


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        InfillEngine(EngineConfig(model=str(tmp_path / "nope")))


def test_a_file_given_as_the_model_names_its_folder(tiny_model_dir, tmp_path, monkeypatch):
    weights = tiny_model_dir / "model.safetensors"
    with pytest.raises(ModelLoadError, match=re.escape(f"names a file, {weights}; name the checkpoint folder that "
                                                       f"holds it ({tiny_model_dir})")):
        InfillEngine(EngineConfig(model=str(weights)))
    monkeypatch.chdir(tiny_model_dir.parent)   # relative, it was taken for a hub id that needs downloading
    with pytest.raises(ModelLoadError, match="names a file"):
        InfillEngine(EngineConfig(model=f"{tiny_model_dir.name}/model.safetensors"))


def test_hub_id_needs_permission(tmp_path, monkeypatch):
    with pytest.raises(ModelLoadError, match="allowDownload"):
        InfillEngine(EngineConfig(model="google/diffusiongemma-26B-A4B-it"))
    monkeypatch.chdir(tmp_path)      # "models/mine" meant as a folder of the workspace that is not there
    with pytest.raises(ModelLoadError, match=re.escape(f"there is no {tmp_path / 'models' / 'mine'}")):
        InfillEngine(EngineConfig(model="models/mine"))


def test_a_mistyped_folder_under_a_folder_that_is_here_is_not_sent_to_the_hub(tmp_path, monkeypatch):
    """`models/mine-typo` with downloading allowed went to huggingface.co as a hub id, and the error said only
    "could not download"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "mine").mkdir(parents=True)
    (tmp_path / "models" / "mine" / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match=re.escape(f"model folder not found: there is no "
                                                       f"{tmp_path / 'models' / 'mine-typo'}")):
        InfillEngine(EngineConfig(model="models/mine-typo", allow_download=True))
    # A project's own `google/` (protobuf files, no models) leaves `google/...` a hub id.
    (tmp_path / "google" / "protobuf").mkdir(parents=True)
    with pytest.raises(ModelLoadError, match="nor in the local hub cache"):
        InfillEngine(EngineConfig(model="google/diffusiongemma-26B-A4B-it"))


@pytest.mark.parametrize("switch, name", [("1", "HF_HUB_OFFLINE"), ("yes", "HF_HUB_OFFLINE"),
                                          ("TRUE", "HF_HUB_OFFLINE"), ("1", "TRANSFORMERS_OFFLINE")])
def test_offline_mode_loads_a_hub_model_from_the_cache_only(tmp_path, monkeypatch, switch, name):
    for other in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, switch)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelLoadError, match=f"{name} is set, so nothing was downloaded"):
        InfillEngine(EngineConfig(model="someone/not-in-the-cache", allow_download=True))


def in_hub_cache(cache: Path, repo: str, checkpoint: Path, leave_out: tuple[str, ...] = ()) -> None:
    """`checkpoint`'s files as the hub cache holds a downloaded repository (models--owner--name/snapshots/REV)."""
    revision = "0" * 40
    repository = cache / ("models--" + repo.replace("/", "--"))
    snapshot = repository / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repository / "refs").mkdir()
    (repository / "refs" / "main").write_text(revision)
    for file in checkpoint.iterdir():
        if file.name not in leave_out:
            shutil.copy(file, snapshot / file.name)


def test_a_hub_model_gets_the_checks_and_the_notes_of_a_local_one(tiny_model_dir, tmp_path, monkeypatch):
    """A hub model loaded as a folder of the hub cache: its diffusion_infill.json is read (it ran with the wrong
    prompt layout, context and canvases), and a repository without a tokenizer is refused (every fill was empty)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")   # (the cache is all there is here)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))   # (read at import)
    in_hub_cache(tmp_path / "hub", "someone/tiny", tiny_model_dir)
    in_hub_cache(tmp_path / "hub", "someone/untokenized", tiny_model_dir,
                 leave_out=("tokenizer.json", "tokenizer_config.json"))
    local = InfillEngine(EngineConfig(model=str(tiny_model_dir), threads=1)).describe()
    hub = InfillEngine(EngineConfig(model="someone/tiny", allow_download=True, threads=1)).describe()
    for key in ("max_prompt_tokens", "canvas_length", "canvas_lengths", "layout"):
        if key in local:
            assert hub[key] == local[key], key
    assert hub["max_prompt_tokens"] == 64
    with pytest.raises(ModelLoadError, match="no tokenizer"):
        InfillEngine(EngineConfig(model="someone/untokenized", allow_download=True, threads=1))


def test_a_hub_model_in_the_cache_loads_without_allowing_downloads(tiny_model_dir, tmp_path, monkeypatch):
    """A model downloaded once was refused offline unless downloading was allowed ("it would have to be
    downloaded"), though nothing needed fetching; a cache holding only part of it says that downloading is off."""
    import huggingface_hub.constants

    for switch in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(switch, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))   # (read at import)
    in_hub_cache(tmp_path / "hub", "someone/fetched", tiny_model_dir)
    in_hub_cache(tmp_path / "hub", "someone/half-fetched", tiny_model_dir, leave_out=("model.safetensors",))
    contacted = []

    def no_network(*args, **kwargs):
        contacted.append(args)
        raise OSError("no network in this test")
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    described = InfillEngine(EngineConfig(model="someone/fetched", threads=1)).describe()
    assert contacted == []   # (huggingface_hub's file download asked huggingface.co for a registry, cache or not)
    assert described["parameters"] and described["model"] == "someone/fetched"
    with pytest.raises(ModelLoadError, match="holds only part of the model someone/half-fetched, and downloading "
                                             "is off"):
        InfillEngine(EngineConfig(model="someone/half-fetched", threads=1))
    with pytest.raises(ModelLoadError, match="nor in the local hub cache"):
        InfillEngine(EngineConfig(model="someone/never-fetched", threads=1))


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An offline hub cache (the hub is out of reach here) and the weight files fetched from it, in order."""
    import huggingface_hub
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))   # (read at import)
    fetched = []

    def noting(fetch):   # (offline, the weights are looked up in the cache instead of downloaded)
        def fetch_and_note(repo_id, filename, **kwargs):
            if filename.endswith(".safetensors"):
                fetched.append(filename)
            return fetch(repo_id, filename, **kwargs)
        return fetch_and_note
    for name in ("hf_hub_download", "try_to_load_from_cache"):
        monkeypatch.setattr(huggingface_hub, name, noting(getattr(huggingface_hub, name)))
    return tmp_path / "hub", fetched


def test_a_hub_model_s_config_is_checked_before_its_weights_are_fetched(tiny_model_dir, tmp_path, hub_cache):
    """A wrong repository (another architecture) was downloaded whole, tens of gigabytes for a real one, before
    its config was read; the message named the cache folder, not the repository."""
    cache, fetched = hub_cache
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "gemma3"}))
    in_hub_cache(cache, "someone/gemma", other)
    with pytest.raises(ModelLoadError, match="^someone/gemma holds a 'gemma3' model"):
        InfillEngine(EngineConfig(model="someone/gemma", allow_download=True, threads=1))
    assert fetched == []


def test_a_hub_download_stops_between_weight_files_when_a_newer_load_is_asked_for(tiny_model_dir, tmp_path,
                                                                                   hub_cache):
    cache, fetched = hub_cache
    sharded = tmp_path / "sharded"
    DiffusionGemmaForBlockDiffusion.from_pretrained(tiny_model_dir).save_pretrained(sharded, max_shard_size="200KB")
    for name in ("tokenizer.json", "tokenizer_config.json", "diffusion_infill.json"):
        if (tiny_model_dir / name).exists():
            shutil.copy(tiny_model_dir / name, sharded / name)
    shards = sorted(path.name for path in sharded.glob("model-*.safetensors"))
    assert len(shards) >= 2
    in_hub_cache(cache, "someone/sharded", sharded)
    with pytest.raises(Cancelled):
        InfillEngine(EngineConfig(model="someone/sharded", allow_download=True, threads=1),
                     cancel=lambda: len(fetched) >= 1)
    assert fetched == shards[:1]
    fetched.clear()
    assert InfillEngine(EngineConfig(model="someone/sharded", allow_download=True, threads=1)).describe()["parameters"]
    assert fetched == shards


def test_a_hub_download_takes_the_checkpoint_s_own_files_only():
    """snapshot_download filters with these patterns (huggingface_hub's own filter here): no other checkpoint or
    format from a subfolder (`*` matches `/` too), no pickles, and Python code only when remote code is trusted."""
    from huggingface_hub.utils import filter_repo_objects

    files = ["config.json", "model-00001-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json",
             "tokenizer_config.json", "checkpoint-500/model.safetensors", "original/consolidated.safetensors",
             "onnx/model.json", "pytorch_model.bin", "modeling_custom.py"]
    plain = list(filter_repo_objects(files, **loading.hub_file_patterns(trust_remote_code=False)))
    assert plain == files[:5]
    trusted = list(filter_repo_objects(files, **loading.hub_file_patterns(trust_remote_code=True)))
    assert trusted == files[:5] + ["modeling_custom.py"]


def test_device_and_dtype_are_chosen_for_the_machine_and_can_be_overridden():
    cuda = torch.cuda.is_available()
    assert loading.pick_device("auto").type == ("cuda" if cuda else "cpu")
    assert loading.pick_dtype("auto", torch.device("cpu")) == torch.float32            # CPUs compute in fp32
    assert loading.pick_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert loading.pick_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16       # the user's choice wins
    assert loading.pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ModelLoadError, match="unknown dtype 'float8'"):
        loading.pick_dtype("float8", torch.device("cpu"))
    if not cuda:
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            loading.pick_device("cuda:0")


def test_corrupt_weights_are_a_clear_error(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"this is not a safetensors file")
    with pytest.raises(ModelLoadError, match="could not load"):
        InfillEngine(EngineConfig(model=str(broken)))


@pytest.mark.parametrize("damage,complaint", [
    (lambda f: [(f / name).unlink() for name in ("tokenizer.json",) if (f / name).exists()], "no tokenizer"),
    (lambda f: (f / "diffusion_infill.json").write_text("{not json"), "diffusion_infill.json is not usable"),
    (lambda f: (f / "diffusion_infill.json").write_text("[64]"), "JSON object"),
    (lambda f: (f / "diffusion_infill.json").write_text(json.dumps({"canvas_length": "big"})), "canvas_length"),
    (lambda f: (f / "diffusion_infill.json").write_text(json.dumps({"canvas_length": 1})), "canvas_length"),
    (lambda f: (f / "diffusion_infill.json").write_text(json.dumps({"canvas_lengths": [8, 32]})), "canvas_lengths"),
    (lambda f: (f / "diffusion_infill.json").write_text(json.dumps({"canvas_lengths": 32})), "canvas_lengths"),
    (lambda f: (f / "config.json").write_text("[]"), "JSON object"),
])
def test_a_damaged_checkpoint_folder_is_a_clear_error(tiny_model_dir, tmp_path, damage, complaint):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    damage(broken)
    with pytest.raises(ModelLoadError, match=complaint):
        InfillEngine(EngineConfig(model=str(broken), threads=1))


def unreadable(path: Path) -> None:
    """`path` becomes a file whose reading fails (EIO), even for root, where chmod 000 would not stop a read."""
    path.unlink()
    path.symlink_to("/proc/self/mem")


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux's /proc/self/mem")
@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_a_file_that_cannot_be_read_is_named_with_the_reason(tiny_model_dir, tmp_path, name):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    unreadable(broken / name)
    with pytest.raises(ModelLoadError, match=re.escape(f"cannot read {broken / name}: Input/output error")):
        InfillEngine(EngineConfig(model=str(broken), threads=1))


@pytest.mark.parametrize("mode", [0o644, 0o311])   # cannot be entered; cannot be listed
def test_a_model_folder_that_cannot_be_read_is_said_so(tiny_model_dir, tmp_path, mode):
    """Root reads any folder: as root the check runs without the capabilities that let it (setpriv)."""
    import os
    import subprocess
    import sys

    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permissions cannot be taken away")
        prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
    locked = tmp_path / "locked"
    shutil.copytree(tiny_model_dir, locked)
    locked.chmod(mode)
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", "import sys\nfrom pathlib import Path\n"
                               "from engine.loading import check_local_folder\n"
                               "try:\n    check_local_folder(Path(sys.argv[1]))\n"
                               "except Exception as exc:\n    print(type(exc).__name__, exc)", str(locked)],
                              capture_output=True, text=True, timeout=120)
    finally:
        locked.chmod(0o755)
    assert done.stdout.strip() == f"ModelLoadError cannot read the folder {locked}: permission denied", done.stderr


def test_a_shard_that_the_index_names_but_is_missing_is_named(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").rename(broken / "model-00001-of-00002.safetensors")
    weights = {name: "model-00001-of-00002.safetensors" for name in ("a", "b")}
    weights["c"] = "model-00002-of-00002.safetensors"
    (broken / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weights}))
    with pytest.raises(ModelLoadError, match=re.escape(f"cannot read {broken / 'model-00002-of-00002.safetensors'}")):
        InfillEngine(EngineConfig(model=str(broken), threads=1))


def test_weights_that_hold_nan_are_refused_at_load(tiny_model_dir, tmp_path):
    """Before, the model was announced ready and every fill then failed (NaN logits), the step timing at load
    having turned the error into a log line."""
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_model_dir, damaged)
    model = DiffusionGemmaForBlockDiffusion.from_pretrained(damaged)
    with torch.no_grad():
        next(model.parameters())[3, 5] = float("nan")   # one number of the embeddings
        model.model.encoder.language_model.layers[0].self_attn.q_proj.weight[0, 0] = float("inf")
    model.save_pretrained(damaged)
    with pytest.raises(ModelLoadError, match=r"2 weights hold NaN or infinite numbers in float32 \(.*embed_tokens"
                                             r".*q_proj.*\): the checkpoint is damaged$"):
        InfillEngine(EngineConfig(model=str(damaged), threads=1, max_steps=3))
    # Quantized, the damaged weights are integers and scales: the NaN was caught only at the first fill, and the
    # infinity not at all (it became the largest integer, and the rest of its row zeros).
    for quantize in ("int8", "int4"):
        with pytest.raises(ModelLoadError, match=r"2 weights hold NaN or infinite numbers in float32 \("
                                                 r".*embed_tokens.*q_proj.*\): the checkpoint is damaged$"):
            InfillEngine(EngineConfig(model=str(damaged), threads=1, max_steps=3, quantize=quantize))


def test_weights_that_compute_nan_are_an_error_not_an_empty_answer(tiny_model_dir):
    """NaN logits pick token 0, <pad>, an end: every fill looked like an honest empty answer. (Weights that hold
    NaN are refused at load; these turn bad once loaded, as an overflow would make them.)"""
    engine = InfillEngine(EngineConfig(model=str(tiny_model_dir), threads=1, max_steps=3))
    with torch.no_grad():
        next(engine.model.parameters()).fill_(float("nan"))   # the embeddings, which every position reads
    with pytest.raises(EngineError, match="NaN or infinite numbers in float32: its weights are damaged$"):
        engine.fill("def f(x):\n    return ", "\n", lengths=[4])


def test_a_token_ruled_out_with_an_infinite_logit_is_no_nan():
    logits = torch.tensor([[[0.0, float("-inf"), 1.0]]])   # (B=1, C=1, V=3)
    proposal = propose(logits, torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.bool),
                       torch.zeros(1, 1, dtype=torch.long), torch.ones(1, 1, 1), torch.full((1, 1), 0.5),
                       torch.zeros(1, 1, dtype=torch.long), SamplerSettings())
    assert torch.isfinite(proposal.entropy).all()


def test_sampling_never_draws_a_token_of_probability_zero_even_for_a_draw_of_zero():
    """Inverse-CDF sampling searched for the first cdf entry >= u * total: for u == 0 (torch.rand can return it)
    that is token 0 (<pad>), even when the model rules it out."""
    logits = torch.tensor([[[float("-inf"), 5.0, 1.0, 0.0],          # token 0 ruled out
                            [-200.0, float("-inf"), 0.0, 0.0]]])     # its probability underflows to 0, as does 1's
    B, C, V = logits.shape
    proposal = propose(logits, torch.zeros(B, C, dtype=torch.long), torch.zeros(B, C, dtype=torch.bool),
                       torch.zeros(B, C, dtype=torch.long), torch.ones(1, 1, 1), torch.zeros(B, C),
                       torch.zeros(B, C, dtype=torch.long), SamplerSettings())
    probs = torch.softmax(logits, -1)
    assert probs[0, 1, 0] == 0
    assert proposal.sampled.tolist() == [[1, 2]]
    assert (probs.gather(-1, proposal.sampled.unsqueeze(-1)) > 0).all()


def test_a_tokenizer_larger_than_the_model_s_vocabulary_is_refused(tiny_model_dir, tmp_path):
    """Its ids past the embedding table would fail every fill; on CUDA they break the device context."""
    narrow = tmp_path / "narrow"
    DiffusionGemmaForBlockDiffusion(tiny_config(vocab_size=512, canvas_length=32)).save_pretrained(narrow)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(narrow)   # 4,096 tokens
    with pytest.raises(ModelLoadError, match="do not belong together"):
        InfillEngine(EngineConfig(model=str(narrow), threads=1))


def test_special_tokens_past_the_model_s_vocabulary_are_refused_at_load(tiny_model_dir, pinned_engine, tmp_path):
    """The probe of plain code passes, but the engine writes <eos> into every canvas and the FIM sentinels into
    every prompt: an id past the embedding table would fail every fill."""
    late_eos = tmp_path / "late-eos"
    shutil.copytree(tiny_model_dir, late_eos)
    tokenizer = AutoTokenizer.from_pretrained(late_eos)
    rows = len(tokenizer)                                          # the tiny model's table: one row per token
    tokenizer.add_special_tokens({"eos_token": "<end>"})          # the id one past the table's last row
    tokenizer.save_pretrained(late_eos)
    with pytest.raises(ModelLoadError, match=f"end-of-text token is id {rows}, beyond the model's vocabulary of "
                                             f"{rows}"):
        InfillEngine(EngineConfig(model=str(late_eos), threads=1))

    late_fim = tmp_path / "late-fim"
    shutil.copytree(pinned_engine.loaded.source, late_fim)
    tokenizer = AutoTokenizer.from_pretrained(late_fim)
    rows = pinned_engine.vocab_size
    tokenizer.add_special_tokens({"additional_special_tokens": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]})
    tokenizer.save_pretrained(late_fim)
    with pytest.raises(ModelLoadError, match=f"<fim_prefix> token is id {rows}, beyond the model's vocabulary of "
                                             f"{rows} tokens \\(the tokenizer has {rows + 3}\\)"):
        InfillEngine(EngineConfig(model=str(late_fim), threads=1))


def test_text_past_the_model_s_vocabulary_is_a_clear_error_not_a_crash_in_the_embedding(tiny_model_dir, tmp_path):
    """A tokenizer a little larger than the model's table loads (its probe of plain code fits), but some text
    tokenizes past the table: that fill is refused in words, and the engine goes on filling other text."""
    short = tmp_path / "short-table"
    DiffusionGemmaForBlockDiffusion(tiny_config(vocab_size=4000, canvas_length=32)).save_pretrained(short)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(short)   # 4,096 tokens
    engine = InfillEngine(EngineConfig(model=str(short), max_steps=2, threads=1))
    rare = engine.tokenizer.decode(list(range(4000, 4030)))
    assert max(engine._encode_text(rare)) >= 4000
    for run in (lambda: engine.fill(rare + "\nx = ", "\n", lengths=[8], seed=0),
                lambda: engine.fill("x = ", rare, lengths=[8], seed=0),
                lambda: engine.rewrite("x = ", "\n", rare, seed=0)):
        with pytest.raises(EngineError, match="beyond the model's vocabulary of 4000 tokens"):
            run()
    assert engine.fill("x = ", "\n", lengths=[4], seed=0).best is not None


def test_a_tokenizer_without_eos_ends_rows_with_the_config_s_and_one_without_either_is_refused(tiny_model_dir,
                                                                                               tmp_path):
    no_eos = tmp_path / "no-eos"
    shutil.copytree(tiny_model_dir, no_eos)
    settings = json.loads((no_eos / "tokenizer_config.json").read_text())
    del settings["eos_token"], settings["pad_token"]
    (no_eos / "tokenizer_config.json").write_text(json.dumps(settings))
    engine = InfillEngine(EngineConfig(model=str(no_eos), max_steps=2, threads=1))
    assert engine.tokenizer.eos_token_id is None
    assert engine.eos_id == engine.pad_id == 1            # the config's eos_token_id
    assert engine.fill("x = ", "\n", lengths=[4], seed=0).best is not None

    config = json.loads((no_eos / "config.json").read_text())
    config.pop("eos_token_id", None)
    config["text_config"]["eos_token_id"] = None
    (no_eos / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="names no end-of-text token"):
        InfillEngine(EngineConfig(model=str(no_eos), max_steps=2, threads=1))


def test_a_config_naming_more_layers_than_the_weights_hold_is_refused(tiny_model_dir, tmp_path):
    """transformers would fill the missing layers with random weights and only log it: every fill would be noise."""
    deeper = tmp_path / "deeper"
    shutil.copytree(tiny_model_dir, deeper)
    config = json.loads((deeper / "config.json").read_text())
    text = config["text_config"]
    text["layer_types"] = text["layer_types"] + text["layer_types"][:2]
    text["num_hidden_layers"] = len(text["layer_types"])
    (deeper / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="lacks .* weight matrices"):
        InfillEngine(EngineConfig(model=str(deeper), threads=1))


def test_a_config_naming_fewer_layers_than_the_weights_hold_is_refused(tiny_model_dir, tmp_path):
    """transformers would drop the layers the config has no place for and only log it: half a model would run."""
    shallower = tmp_path / "shallower"
    shutil.copytree(tiny_model_dir, shallower)
    config = json.loads((shallower / "config.json").read_text())
    text = config["text_config"]
    text["layer_types"] = text["layer_types"][:1]
    text["num_hidden_layers"] = 1
    (shallower / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="has no place for"):
        InfillEngine(EngineConfig(model=str(shallower), threads=1))


@pytest.mark.parametrize("field, factor", [("hidden_size", 2), ("vocab_size", 2), ("vocab_size", 2_000_000)])
def test_a_config_whose_shapes_differ_from_the_weights_is_refused_by_name(tiny_model_dir, tmp_path, field, factor):
    """transformers' own error said only "look at the above report", a report in a log the editor's user never
    sees: the message names a weight and both shapes. It is found before loading: transformers built the weight at
    the config's size first, so a vocabulary made a million times larger was reported as out of memory."""
    edited = tmp_path / "edited"
    shutil.copytree(tiny_model_dir, edited)
    config = json.loads((edited / "config.json").read_text())
    config["text_config"][field] *= factor
    (edited / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"has shape \(.*\) where its config.json asks for \(.*belong together"):
        InfillEngine(EngineConfig(model=str(edited), threads=1))


@pytest.mark.parametrize("fast_path", ["off", "static"])
def test_a_primed_prompt_is_reused_by_the_fill_that_follows_and_gives_the_same_text(engine, fast_path):
    primed = InfillEngine(EngineConfig(model=engine.loaded.source, max_steps=4, threads=1, fast_path=fast_path),
                          loaded=engine.loaded)
    cold = InfillEngine(EngineConfig(model=engine.loaded.source, max_steps=4, threads=1, fast_path=fast_path,
                                     reuse_prefix=False), loaded=engine.loaded)
    prefix, suffix = "def total(xs):\n    s = 0\n    for x in xs:\n        s", "\n    return s\n"
    report = primed.prime(prefix, suffix)
    assert report["prompt_tokens"] > 10 and report["reused_tokens"] == 0
    assert primed.describe()["prefix_reuse"]["prompt_tokens"] == 0       # priming is not a request
    typed = prefix + " +="                                               # the user typed on meanwhile
    result = primed.fill(typed, suffix, lengths=[6], seed=3)
    reuse = primed.describe()["prefix_reuse"]
    assert reuse["last_reused"] >= reuse["prompt_tokens"] - 4            # only the typed tokens were encoded
    assert result.best.text == cold.fill(typed, suffix, lengths=[6], seed=3).best.text
    assert cold.prime(prefix, suffix)["prompt_tokens"] == 0              # nothing to prepare without reuse


def test_running_out_of_memory_is_a_clear_engine_error_and_the_engine_still_fills(engine):
    """A real allocation failure of torch's CPU allocator (an exabyte: no machine or overcommit policy grants it)
    reads as "out of CPU memory", not as an internal error; the next fill works."""
    with pytest.raises(EngineError, match="out of CPU memory"):
        engine._guarded(lambda: torch.empty(1 << 62, dtype=torch.uint8))
    with pytest.raises(ZeroDivisionError):   # other failures are not disguised as memory trouble
        engine._guarded(lambda: 1 / 0)
    assert engine.fill("def f(x):\n    return ", "\n", lengths=[8], seed=0).items


@pytest.mark.parametrize("message", [
    "CUDA error: out of memory\nCompile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.",
    "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"])
def test_gpu_allocations_outside_torch_s_allocator_read_as_out_of_gpu_memory(message):
    """cuBLAS and cuDNN allocate their own workspaces; their failures are RuntimeErrors with these texts (torch's
    wording), which got "internal error while generating" and kept the cached blocks."""
    assert memory.out_of_memory(RuntimeError(message)) == "GPU"
    assert memory.out_of_memory(RuntimeError("CUDA error: device-side assert triggered")) is None


def test_the_failed_runs_tensors_are_gone_before_cached_memory_is_handed_back(engine, monkeypatch):
    """On a GPU the next request needs the memory the failed run held: its frames (and tensors) must not be kept
    alive by the exception while the caching allocator is emptied, nor afterwards by the error the user gets."""
    scratch = []
    freed_at_release = []
    monkeypatch.setattr(memory, "release_cached_gpu_memory", lambda: freed_at_release.append(scratch[0]() is None))

    def failing_run():
        activations = torch.ones(1 << 16)
        scratch.append(weakref.ref(activations))
        torch.empty(1 << 62, dtype=torch.uint8)   # a real allocation failure

    with pytest.raises(EngineError, match="out of CPU memory") as failure:
        engine._guarded(failing_run)
    assert freed_at_release == [True]
    assert failure.value.__cause__ is None and failure.value.__context__ is None


def test_running_out_of_memory_for_the_fast_path_says_how_to_load_with_less(monkeypatch, tiny_model_dir):
    """The weights fit, the static cache (or the compiled step's warm-up) did not: before, the user read "could
    not load the model: OutOfMemoryError: ..." with no way out named, and the log a whole traceback."""
    import engine.infill_engine as infill_engine

    def cache_without_memory(*args, **kwargs):
        torch.empty(1 << 62, dtype=torch.uint8)   # a real allocation failure, where a GPU would run out

    monkeypatch.setattr(infill_engine, "StaticPrompt", cache_without_memory)
    with pytest.raises(ModelLoadError, match="out of CPU memory preparing the static fast path .*fastPath off"):
        InfillEngine(EngineConfig(model=str(tiny_model_dir), fast_path="static", threads=1))
    assert InfillEngine(EngineConfig(model=str(tiny_model_dir), fast_path="off", threads=1)).fast_path == "off"


def test_a_model_that_cannot_move_to_its_device_is_dropped_before_cached_memory_is_handed_back(monkeypatch):
    """Moving the weights can fail half-way on a GPU: what already moved must be freed before the cache is emptied,
    or the server keeps that memory in its error state."""
    moved, alive_at_release = [], []

    def move_without_memory(model, *args, **kwargs):
        moved.append(weakref.ref(model))
        torch.empty(1 << 62, dtype=torch.uint8)   # a real allocation failure, where a GPU would run out

    monkeypatch.setattr(DiffusionGemmaForBlockDiffusion, "to", move_without_memory)
    monkeypatch.setattr(loading, "release_cached_gpu_memory",
                        lambda: alive_at_release.append(moved[0]() is not None))
    with pytest.raises(ModelLoadError,
                       match="out of CPU memory moving .* to cpu; try a smaller model or a smaller dtype"):
        loading.load(EngineConfig(threads=1))
    assert alive_at_release == [False]


@pytest.mark.parametrize("quantize, device, advice", [
    ("int8", "cpu", "quantize none, a smaller model or a smaller dtype"),
    ("none", "cuda", "quantize int8 or int4, a smaller model or a smaller dtype"),
    ("int8", "cuda", "quantize int4, a smaller model or a smaller dtype"),
    ("int4", "cuda", "a smaller model or a smaller dtype"),
])
def test_memory_advice_names_only_formats_that_hold_less(quantize, device, advice):
    """With int8 set it said "try quantize int8 or int4"; on the CPU, where the float weights are all read before
    any is quantized, quantizing only adds to the load's peak (once loaded, as for the fast path's cache, a smaller
    format holds less there too)."""
    assert loading.memory_advice(quantize, device) == advice
    assert loading.memory_advice(quantize, "cuda", loading=False) == loading.memory_advice(quantize, "cuda")
    if device == "cpu":
        assert loading.memory_advice(quantize, "cpu", loading=False) == loading.memory_advice(quantize, "cuda")


def test_running_out_of_memory_while_quantizing_says_so(monkeypatch, tiny_model_dir):
    import engine.quantize as quantize_module

    def quantize_without_memory(*args, **kwargs):
        torch.empty(1 << 62, dtype=torch.uint8)   # a real allocation failure

    monkeypatch.setattr(quantize_module, "quantize_weight", quantize_without_memory)
    with pytest.raises(ModelLoadError, match="out of CPU memory quantizing .* to int8 on cpu; try quantize none"):
        loading.load(EngineConfig(model=str(tiny_model_dir), quantize="int8", threads=1))


def test_an_unknown_weight_format_is_refused_before_the_model_is_looked_for():
    with pytest.raises(ModelLoadError, match="unknown quantize 'int3'"):
        loading.load(EngineConfig(model="/no/such/model", quantize="int3"))


@pytest.mark.parametrize("config, says", [({"model_type": "llama"}, "holds a 'llama' model"),
                                          ({"architectures": ["X"]}, "names no model_type")])   # (was "a 'None'")
def test_wrong_architecture_is_refused(tmp_path, config, says):
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=f"{says}; this server needs a DiffusionGemma"):
        InfillEngine(EngineConfig(model=str(tmp_path)))


@pytest.mark.parametrize("edit, complaint", [
    (lambda config: config.pop("text_config"), "has no text_config object"),   # was a TypeError from torch
    (lambda config: config.update(canvas_length=0), "a canvas of 0 tokens is too small"),   # was taken as 256
])
def test_config_gaps_are_named(tiny_model_dir, tmp_path, edit, complaint):
    edited = tmp_path / "edited"
    shutil.copytree(tiny_model_dir, edited)
    config = json.loads((edited / "config.json").read_text())
    edit(config)
    (edited / "config.json").write_text(json.dumps(config))
    (edited / "diffusion_infill.json").unlink(missing_ok=True)   # its canvas_length would stand for the config's
    with pytest.raises(ModelLoadError, match=complaint):
        InfillEngine(EngineConfig(model=str(edited), threads=1))


def test_fim_prompt_puts_the_suffix_first_so_the_canvas_continues_the_prefix(engine):
    fp, fs, fm = engine.fim_ids
    prompt, pinned = engine._prompt("a = 1\n", "b = 2\n")
    assert prompt[0] == fs and prompt[-1] == fm and pinned == []
    assert prompt.index(fp) > prompt.index(fs)
    assert engine.tokenizer.decode(prompt[prompt.index(fp) + 1:-1]) == "a = 1\n"


def test_prefix_reuse_matches_a_fresh_encode(tiny_model_dir):
    reusing = InfillEngine(EngineConfig(model=str(tiny_model_dir), max_steps=3, threads=1))
    fresh = InfillEngine(EngineConfig(model=str(tiny_model_dir), max_steps=3, threads=1, reuse_prefix=False))
    suffix = "\n    return total\n"
    prefix = ""
    for typed in ("def f(xs):\n    total = 0\n    for x in xs:\n        total", " +", "= x"):  # keystrokes
        prefix += typed
        a = reusing.fill(prefix, suffix, lengths=[6], seed=5)
        b = fresh.fill(prefix, suffix, lengths=[6], seed=5)
        assert a.best.text == b.best.text
        prompt, _ = reusing._prompt(prefix, suffix)
        cache_a = encoded_for_decoder(reusing, prompt, 1)
        cache_b = encoded_for_decoder(fresh, prompt, 1)
        for layer_a, layer_b in zip(cache_a.layers, cache_b.layers):
            assert torch.allclose(layer_a.keys, layer_b.keys, atol=1e-5)
    stats = reusing.describe()["prefix_reuse"]
    assert stats["reused_tokens"] > 0.5 * stats["prompt_tokens"]  # keystrokes reuse most of the prompt
    assert fresh.describe()["prefix_reuse"]["reused_tokens"] == 0


def test_prefix_reuse_in_bfloat16_stays_within_its_rounding_of_a_fresh_encode(tiny_model_dir):
    """bfloat16 (the GPU default): the prefix reused and only the changed tail encoded computes in other shapes than
    one fresh pass, so the cache differs from a fresh one by rounding, not by a wrong position or a stale token (the
    README says a reused prompt may then sample another token)."""
    reusing = InfillEngine(EngineConfig(model=str(tiny_model_dir), threads=1, dtype="bfloat16"))
    fresh = InfillEngine(EngineConfig(model=str(tiny_model_dir), threads=1, dtype="bfloat16", reuse_prefix=False))
    suffix = "\n    return total\n"
    prefix = ""
    for typed in ("def f(xs):\n    total = 0\n    for x in xs:\n        total", " +", "= x"):
        prefix += typed
        prompt, _ = reusing._prompt(prefix, suffix)
        cache_a = encoded_for_decoder(reusing, prompt, 1)
        cache_b = encoded_for_decoder(fresh, prompt, 1)
        for layer_a, layer_b in zip(cache_a.layers, cache_b.layers):
            for a, b in ((layer_a.keys, layer_b.keys), (layer_a.values, layer_b.values)):
                assert a.dtype == torch.bfloat16
                assert (a.float() - b.float()).abs().max() <= 0.02 * b.float().abs().max() + 0.02
    assert reusing.describe()["prefix_reuse"]["reused_tokens"] > 0


def test_a_row_ends_only_where_the_model_put_the_end_token(engine):
    eos, pad = engine.eos_id, engine.pad_id
    a, b = engine.tokenizer.convert_tokens_to_ids(["x", "y"])
    early = engine._candidate([a, b, eos, pad, a, eos, pad, pad], [0.1] * 8, free=5, canvas_len=8, steps=4)
    assert (early.length, early.ended, early.text) == (2, True, "xy")
    # the <eos> at the row's limit is pinned, not chosen: running up to it is not ending
    full = engine._candidate([a, b, a, b, a, eos, pad, pad], [0.1] * 8, free=5, canvas_len=8, steps=4)
    assert (full.length, full.ended, full.text) == (5, False, "xyxyx")
    assert early.confidence == pytest.approx(math.exp(-0.1))


def test_confidence_reads_the_middle_and_its_end_not_the_padding_after_it(engine):
    """Two rows that wrote the same middle with the same certainty rank equal, whatever room was left after their
    <eos>: the easy padding predictions there used to lift the row with the longer limit."""
    eos, pad = engine.eos_id, engine.pad_id
    a, b = engine.tokenizer.convert_tokens_to_ids(["x", "y"])
    written = [0.5, 0.5, 0.2]                         # middle "xy" then <eos>
    short = engine._candidate([a, b, eos, pad], written + [0.0], free=3, canvas_len=4, steps=4)
    long = engine._candidate([a, b, eos, pad, pad, pad, pad, pad], written + [0.0] * 5, free=8, canvas_len=8,
                             steps=4)
    assert short.confidence == pytest.approx(long.confidence) == pytest.approx(math.exp(-0.4))
    immediate = engine._candidate([eos, pad, pad, pad], [0.3, 0.0, 0.0, 0.0], free=4, canvas_len=4, steps=4)
    assert immediate.length == 0 and immediate.confidence == pytest.approx(math.exp(-0.3))


def test_a_row_cut_inside_a_multibyte_character_drops_its_unfinished_bytes(engine):
    """A fill longer than one canvas is written block by block; a block that ran to its limit in the middle of
    a character must not end in U+FFFD (the next block writes the character again, whole)."""
    ids = engine._encode_text("x = 'né'")
    cut = next(n for n in range(1, len(ids)) if engine.tokenizer.decode(ids[:n]).endswith("\ufffd"))
    item = engine._candidate(ids[:cut] + [engine.eos_id], [0.1] * (cut + 1), free=cut, canvas_len=cut + 1,
                             steps=4)
    assert not item.ended and "\ufffd" not in item.text and item.text == "x = 'n"
    assert item.length < cut and engine.tokenizer.decode(ids[:item.length]) == item.text
    # a row that ended keeps what it wrote: the model's own bytes, not a cut
    whole = engine._candidate(ids + [engine.eos_id], [0.1] * (len(ids) + 1), free=len(ids) + 1,
                              canvas_len=len(ids) + 1, steps=4)
    assert whole.ended and whole.text == "x = 'né'"


def test_confidence_acceptance_keeps_sure_tokens_and_always_one():
    from engine.sampler import confidence_accept

    top = torch.tensor([[0.95, 0.2, 0.5, 0.99], [0.3, 0.6, 0.1, 0.2]])
    pinned = torch.tensor([[False, False, False, True], [False, False, False, False]])
    accept = confidence_accept(top, pinned, threshold=0.9)
    assert accept.tolist() == [[True, False, False, True], [False, True, False, False]]


def test_masked_noise_decides_each_position_once(tiny_model_dir):
    masked = InfillEngine(EngineConfig(model=str(tiny_model_dir), noise="masked", acceptance="confidence",
                                       max_steps=40, threads=1))
    mask = masked.mask_id
    B, C = 1, 16
    generator = torch.Generator().manual_seed(0)
    canvas = torch.full((B, C), mask)
    pinned = torch.zeros(B, C, dtype=torch.bool)
    recording_step, seen = recording_decoder_step(masked, B, C)

    result = denoise(recording_step, canvas, pinned, masked._settings(stop_entropy=0.0), masked.vocab_size,
                     generator)
    for earlier, later in zip(seen, seen[1:]):
        decided = earlier != mask
        assert torch.equal(later[decided], earlier[decided])  # a decided token never changes
        assert (later != mask).sum() > decided.sum()          # and every step decides at least one more
    assert (result.tokens != mask).all() and len(seen) <= C
    assert masked.fill("x = ", "\n", lengths=[6]).best is not None


def test_masked_noise_never_answers_mask_itself():
    """A model that rates <mask> highest everywhere (as random weights may) and two steps: the positions left
    undecided still get a real token, not the noise token."""
    B, C, V, mask = 1, 8, 12, 11
    logits = torch.zeros(B, C, V)
    logits[..., mask] = 9.0

    def decoder_step(canvas, sc_logits):
        return logits

    settings = SamplerSettings(steps=2, mask_id=mask, acceptance="confidence", stop_entropy=0.0)
    canvas = torch.full((B, C), mask)
    result = denoise(decoder_step, canvas, torch.zeros(B, C, dtype=torch.bool), settings, V,
                     torch.Generator().manual_seed(0))
    assert (result.tokens != mask).all()
    assert (result.tokens < V).all()


def test_unknown_sampler_options_are_refused(tiny_model_dir):
    from engine import EngineError

    with pytest.raises(EngineError, match="unknown noise"):
        InfillEngine(EngineConfig(model=str(tiny_model_dir), noise="gaussian"))


def test_long_fills_continue_block_by_block(engine):
    # canvas 32 holds at most 31 middle tokens; random weights rarely place <eos>, so 70 tokens need 3 canvases
    result = engine.fill("def f():\n    ", "\n", max_new_tokens=70, lengths=[70], seed=2)
    best = result.best
    assert 31 < best.length <= 70
    assert "block by block" in result.reason
    short = engine.fill("def f():\n    ", "\n", max_new_tokens=20, lengths=[20], seed=2)
    assert short.best.length <= 20 and "block by block" not in short.reason


def test_continuation_goes_on_from_the_longest_row_and_not_for_the_eos_slot(engine, monkeypatch):
    """Asking for the canvas's 32 tokens ran two more canvases (its <eos> slot left one token "missing", and the
    best row was the 16-token one); a longer fill goes on from the row that wrote the most."""
    monkeypatch.setattr(engine, "end_ids", {10**9})   # random weights: no row may end
    rows = []
    fill = engine._fill
    monkeypatch.setattr(engine, "_fill", lambda *args, **kwargs: rows.append(args[2]) or fill(*args, **kwargs))
    whole = engine.fill("def f(x):\n    ", "\n", max_new_tokens=32, lengths=[16, 32], seed=1)
    assert rows == [[16, 31]] and "block by block" not in whole.reason
    rows.clear()
    longer = engine.fill("def f(x):\n    ", "\n", max_new_tokens=48, lengths=[16, 48], seed=1)
    assert rows == [[16, 31], [17]] and longer.best.length == 48
    # The 16-token row, cut at its limit too, is only the start of an unfinished fill: not offered beside the
    # continued one (it would be picked, a shorter row scoring higher than the continued one's first canvas).
    assert [item.length for item in longer.items] == [48] and "the 31-token row" in longer.reason


def test_a_continued_block_reads_its_context_from_a_line_start(engine, monkeypatch):
    """The plan fills the prompt; each block adds what was written, and the engine cut the overflow by tokens: the
    model read a context starting mid-line (a snippet comment without its `#`, read as code)."""
    monkeypatch.setattr(engine, "end_ids", {10**9})   # random weights: no row may end
    prefixes = []
    fill = engine._fill
    monkeypatch.setattr(engine, "_fill", lambda *args, **kwargs: prefixes.append(args[0]) or fill(*args, **kwargs))
    prefix = "".join(f"# note {i} on it\n" for i in range(8)) + "def f(x):\n    "
    suffix = "\n"
    room = engine.max_prompt_tokens - 3 - min(engine.count_tokens(suffix), (engine.max_prompt_tokens - 3) // 3)
    assert room - 31 < engine.count_tokens(prefix) <= room   # fits, but not with a first block's 31 tokens
    written = engine.fill(prefix, suffix, max_new_tokens=50, lengths=[50], seed=2).best.text
    assert len(prefixes) == 2 and prefixes[0] == prefix
    continued, whole = prefixes[1], prefix + written
    start = whole.index(continued)
    assert start > 0 and whole[start - 1] == "\n" and engine.count_tokens(continued) <= room


def test_text_the_tokenizer_cannot_take_and_a_step_count_below_one_are_engine_errors(engine, tiny_model_dir):
    with pytest.raises(EngineError, match="cannot be tokenized"):
        engine.fill("s = '\ud83d'", "\n", max_new_tokens=4)   # a lone surrogate: a TypeError inside tokenizers
    with pytest.raises(EngineError, match="at least 1"):
        InfillEngine(EngineConfig(model=str(tiny_model_dir), max_steps=0))
    with pytest.raises(EngineError, match="at least 1"):
        engine.retune(max_steps=0, seed=0, reuse_prefix=True)


def test_a_rewrite_runs_no_more_steps_than_the_cap(tiny_model_dir):
    capped = InfillEngine(EngineConfig(model=str(tiny_model_dir), max_steps=2, threads=1))
    result = capped.rewrite("def f(x):\n    ", "\n", "return x + 1", strength=1.0, seed=0)
    assert 1 <= result.best.steps <= 2   # it ran 4, the rewrite's floor, past the user's 2


def test_count_tokens_matches_the_tokenizer_and_budget_is_the_checkpoint_s(engine):
    text = "def add(a, b):\n    return a + b\n"
    assert engine.count_tokens(text) == len(engine.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert engine.count_tokens("") == 0
    assert engine.max_prompt_tokens == 64  # from the folder's diffusion_infill.json


def test_a_configured_context_replaces_the_checkpoint_s_and_cuts_the_prompt(engine):
    narrower = InfillEngine(EngineConfig(model=engine.loaded.source, max_steps=2, threads=1, max_prompt_tokens=40),
                            loaded=engine.loaded)
    assert narrower.max_prompt_tokens == 40 and narrower.describe()["max_prompt_tokens"] == 40
    prefix = "".join(f"x{i} = {i}\n" for i in range(200))
    narrower.fill(prefix, "\n", max_new_tokens=4, lengths=[4], seed=1)
    assert 32 <= len(narrower.cached_prompt) <= 40 < engine.count_tokens(prefix)
    with pytest.raises(EngineError, match="too small"):
        InfillEngine(EngineConfig(model=engine.loaded.source, threads=1, max_prompt_tokens=4), loaded=engine.loaded)


def test_a_context_past_the_models_positions_is_cut_to_fit_and_said(engine):
    # The prompt and the canvas after it must fit the model's positions: a context of 262,144 tokens asked of a
    # model of fewer was taken as it was (and timed at half that length while loading).
    positions = engine.model.config.text_config.max_position_embeddings
    canvas = engine.loaded.canvas_length
    wide = InfillEngine(EngineConfig(model=engine.loaded.source, max_steps=2, threads=1, max_prompt_tokens=262_144),
                        loaded=engine.loaded)
    assert wide.max_prompt_tokens == positions - canvas
    assert wide.describe()["notes"] == [f"a context of 262144 tokens (contextTokens) does not fit this model's "
                                        f"{positions} positions beside its {canvas}-token canvas: using "
                                        f"{positions - canvas}"]
    assert engine.describe()["notes"] == []


# ---- static-shape fast path -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def static_engine(engine):
    return InfillEngine(EngineConfig(model=engine.loaded.source, max_steps=6, threads=1, fast_path="static"),
                        loaded=engine.loaded)


def static_logits(static_engine, prompt: list[int], canvas: torch.Tensor) -> torch.Tensor:
    static_engine.static.encode(prompt, reuse=True)
    rows, canvas_len = canvas.shape
    positions = torch.arange(len(prompt), len(prompt) + canvas_len).unsqueeze(0)
    mask = decoder_masks(len(prompt), static_engine.static.max_len, canvas_len, static_engine.window, "cpu")
    with torch.no_grad():
        cache = static_engine.static.for_rows(rows)
        return static_engine.model(**with_cache(static_engine.model, cache), decoder_input_ids=canvas,
                                   decoder_position_ids=positions, decoder_attention_mask=mask).logits


def dynamic_logits(engine, prompt: list[int], canvas: torch.Tensor) -> torch.Tensor:
    fresh = InfillEngine(dataclasses.replace(engine.config, reuse_prefix=False), loaded=engine.loaded)
    with torch.no_grad():
        return fresh._decoder_step(encoded_for_decoder(fresh, prompt, canvas.shape[0]), len(prompt), canvas.shape[1])(
            canvas, None)


def test_static_cache_reads_the_same_context_as_the_dynamic_one_also_after_prefix_reuse(engine, static_engine):
    canvas = torch.randint(0, engine.vocab_size, (2, 16), generator=torch.Generator().manual_seed(1))
    first = list(range(5, 25))
    assert torch.allclose(static_logits(static_engine, first, canvas), dynamic_logits(engine, first, canvas),
                          atol=1e-4)
    edited = first[:15] + [99, 98, 97]          # the user typed: only the tail after token 15 changes
    reused = static_logits(static_engine, edited, canvas)
    assert static_engine.static.shared_prefix(edited) == len(edited) - 1  # the cache now holds `edited`
    assert torch.allclose(reused, dynamic_logits(engine, edited, canvas), atol=1e-4)


def test_static_path_fills_like_the_dynamic_path(engine, static_engine):
    for seed in (3, 4):
        ours = static_engine.fill("def add(a, b):\n    return ", "\n", lengths=[4, 8], seed=seed)
        theirs = engine.fill("def add(a, b):\n    return ", "\n", lengths=[4, 8], seed=seed)
        assert [c.text for c in ours.items] == [c.text for c in theirs.items]
    assert static_engine.describe()["fast_path"] == "static"
    assert static_engine.describe()["prefix_reuse"]["reused_tokens"] > 0  # same prompt twice: reused


def test_compiled_step_captures_one_graph_and_fills_like_the_eager_one(engine, static_engine):
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    # aot_eager: the same graph capture as inductor without its minutes of code generation on this CPU.
    compiled = InfillEngine(EngineConfig(model=engine.loaded.source, max_steps=6, threads=1, fast_path="compiled",
                                         compile_backend="aot_eager"), loaded=engine.loaded)
    assert not torch._dynamo.utils.counters["graph_break"]  # warm-up traced the whole step
    ours = compiled.fill("x = ", "\n", lengths=[8, 16, 31], seed=5)
    theirs = static_engine.fill("x = ", "\n", lengths=[8, 16, 31], seed=5)
    assert [c.text for c in ours.items] == [c.text for c in theirs.items]


def test_a_compiler_that_fails_leaves_the_plain_path_serving(engine):
    """torch 2.11's Triton code generation failed on the 26B-A4B's vocabulary (bench/RESULTS.md); here a backend that
    fails the same way, at the warm-up's first compile."""
    import torch._dynamo

    def failing_backend(graph, example_inputs):
        raise TypeError("list indices must be integers or slices, not NoneType")

    torch._dynamo.reset()
    torch._dynamo.register_backend(failing_backend, name="failing_for_test")
    served = InfillEngine(EngineConfig(model=engine.loaded.source, max_steps=6, threads=1, fast_path="compiled",
                                       compile_backend="failing_for_test"), loaded=engine.loaded)
    assert served.describe()["fast_path"] == "off" and served.static is None
    assert served.prompt_budget == engine.prompt_budget   # the plain path's context, not the static cache's
    assert any("compiled decoder step failed to build" in note and "list indices" in note for note in served.notes)
    ours = served.fill("x = ", "\n", lengths=[8, 16], seed=5)
    theirs = engine.fill("x = ", "\n", lengths=[8, 16], seed=5)
    assert [c.text for c in ours.items] == [c.text for c in theirs.items]


def test_a_compiler_out_of_memory_is_reported_as_memory_and_a_failing_compiled_run_fails_the_load(engine):
    """Only the compiler's own failures fall back: running out of memory while compiling is said as such (with
    advice), and an error while the compiled step runs (a device assert, say) fails the load as it did before."""
    import torch._dynamo

    def compiler_out_of_memory(graph, example_inputs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def compiled_run_fails(graph, example_inputs):
        def run(*args):
            raise RuntimeError("CUDA error: device-side assert triggered")
        return run

    for name, backend in (("oom_for_test", compiler_out_of_memory), ("run_fails_for_test", compiled_run_fails)):
        torch._dynamo.reset()
        torch._dynamo.register_backend(backend, name=name)
        config = EngineConfig(model=engine.loaded.source, max_steps=6, threads=1, fast_path="compiled",
                              compile_backend=name)
        if name == "oom_for_test":
            with pytest.raises(ModelLoadError, match="out of GPU memory preparing the compiled fast path"):
                InfillEngine(config, loaded=engine.loaded)
        else:
            with pytest.raises(RuntimeError, match="device-side assert"):
                InfillEngine(config, loaded=engine.loaded)
    torch._dynamo.reset()


def test_a_compiler_that_fails_on_a_shape_first_met_in_a_request_falls_back_there(engine):
    """A shape the warm-up did not cover (two rows of 16 here) compiles during a request. Before, a compiler
    failure there failed that request and every later one at that shape, and running out of memory while compiling
    came back as an internal error."""
    import torch._dynamo
    from torch._dynamo.backends.registry import lookup_backend

    failing = {"with": None}   # what the compiler raises once the load is done

    def fails_after_the_load(graph, example_inputs):
        if failing["with"] is None:
            return lookup_backend("aot_eager")(graph, example_inputs)
        raise failing["with"]

    torch._dynamo.reset()
    torch._dynamo.register_backend(fails_after_the_load, name="fails_after_the_load_for_test")
    served = InfillEngine(EngineConfig(model=engine.loaded.source, max_steps=6, threads=1, fast_path="compiled",
                                       compile_backend="fails_after_the_load_for_test"), loaded=engine.loaded)
    assert served.fast_path == "compiled" and (2, 16) not in served.warm_shapes()
    # out of memory while compiling: said as memory, and the compiled path stays (memory may be free next time)
    failing["with"] = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(EngineError, match="out of GPU memory while generating"):
        served.fill("x = ", "\n", lengths=[4, 8], seed=5)
    assert served.fast_path == "compiled"
    # any other failure of the compiler: this request and the next ones are served by the plain path
    failing["with"] = TypeError("list indices must be integers or slices, not NoneType")
    ours = served.fill("x = ", "\n", lengths=[4, 8], seed=5)
    theirs = engine.fill("x = ", "\n", lengths=[4, 8], seed=5)
    assert [c.text for c in ours.items] == [c.text for c in theirs.items]
    assert served.fast_path == "off" and any("list indices" in note for note in served.notes)
    assert served.fill("x = ", "\n", lengths=[4, 8], seed=5).best.text == theirs.best.text
    torch._dynamo.reset()


def test_a_context_the_static_path_cuts_to_the_window_is_said_with_the_number_it_uses(tiny_model_dir):
    """Before, the cut to the sliding window was silent, and the only note, from fitting the model's positions, named
    a context of 8,064 tokens where 64 were read."""
    for asked in (262_144, 1_000):
        served = InfillEngine(EngineConfig(model=str(tiny_model_dir), max_steps=2, threads=1, fast_path="static",
                                           max_prompt_tokens=asked))
        assert served.prompt_budget == 64
        assert len(served.notes) == 1 and f"a context of {asked} tokens" in served.notes[0]
        assert "static fast path" in served.notes[0] and "using 64" in served.notes[0]
    plain = InfillEngine(EngineConfig(model=str(tiny_model_dir), max_steps=2, threads=1, max_prompt_tokens=1_000))
    assert plain.prompt_budget == 1_000 and not plain.notes
    quiet = InfillEngine(EngineConfig(model=str(tiny_model_dir), max_steps=2, threads=1, fast_path="static"))
    assert quiet.prompt_budget == 64 and not quiet.notes   # the checkpoint's own 64: nothing asked, nothing cut


def test_a_limit_that_fills_a_bucket_exactly_does_not_double_the_canvas(engine):
    roomy = InfillEngine(engine.config, loaded=dataclasses.replace(engine.loaded, canvas_length=64))
    result = roomy.fill("x = ", "\n", lengths=[8, 16, 32])
    assert {item.canvas_length for item in result.items} == {32}       # not 64: <eos> takes the last slot
    assert sorted(item.length for item in result.items)[-1] <= 31


def test_unknown_fast_path_is_refused(tiny_model_dir):
    from engine import EngineError

    with pytest.raises(EngineError, match="fast_path"):
        InfillEngine(EngineConfig(model=str(tiny_model_dir), fast_path="warp"))


def test_the_26b_a4b_shape_has_the_published_parameter_count():
    from engine.configs import diffusiongemma_26b_a4b_config

    with torch.device("meta"):  # shapes only, no memory
        model = DiffusionGemmaForBlockDiffusion(diffusiongemma_26b_a4b_config())
    text = sum(p.numel() for name, p in model.named_parameters() if "vision" not in name)
    assert text == 25_250_986_752                     # the model card's "25.2B total" (text)
    assert model.config.text_config.num_experts == 128 and model.config.text_config.top_k_experts == 8


def test_noise_follows_what_the_checkpoint_was_trained_with(tiny_model_dir, tmp_path):
    assert InfillEngine(EngineConfig(model=str(tiny_model_dir))).config.noise == "uniform"
    masked_dir = tmp_path / "masked"
    shutil.copytree(tiny_model_dir, masked_dir)
    meta = json.loads((masked_dir / "diffusion_infill.json").read_text())
    (masked_dir / "diffusion_infill.json").write_text(json.dumps({**meta, "noise": "masked"}))
    masked = InfillEngine(EngineConfig(model=str(masked_dir)))
    assert masked.config.noise == "masked" and masked.mask_id == masked.tokenizer.mask_token_id
    assert InfillEngine(EngineConfig(model=str(masked_dir), noise="uniform")).mask_id is None  # the user decides


def test_special_token_text_in_code_is_code_not_a_marker(engine):
    ids = engine._encode_text('END = "<eos>"\n')
    assert engine.eos_id not in ids
    assert engine.tokenizer.decode(ids) == 'END = "<eos>"\n'


# ---- latency budget -----------------------------------------------------------------------------------------------

def test_without_a_budget_every_step_is_planned(engine):
    result = engine.fill("x = ", "\n", lengths=[4, 8])
    assert result.timings["planned_steps"] == engine.config.max_steps
    assert result.timings["batch"] == 2


def test_a_budget_plans_the_steps_that_fit_at_the_measured_pace(engine):
    saved = dict(engine.pace_ms)
    try:
        # Pretend a step costs 10 s: a 45 s budget fits 4 steps (with 10% slack), too few for three length
        # candidates, so the longest row runs alone; tiny's real steps take milliseconds, so none is cut short.
        engine.pace_ms.update({(3, 16): 10_000.0, (1, 16): 10_000.0})
        result = engine.fill("x = ", "\n", lengths=[4, 8, 12], budget_ms=45_000)
        assert result.timings["batch"] == 1 and len(result.items) == 1
        assert result.timings["planned_steps"] == 4 and result.best.steps == 4
        assert result.best.length <= 12
    finally:
        engine.pace_ms.clear()
        engine.pace_ms.update(saved)


@pytest.mark.parametrize("length,limit,trained,canvas", [
    (10, 64, (), 16), (17, 64, (), 32), (40, 32, (), 32),        # any bucket, at most the model's canvas
    (10, 64, (64,), 64), (10, 64, (32, 64), 32), (40, 64, (16, 32, 64), 64), (70, 64, (16, 32), 64),
])
def test_the_canvas_is_the_smallest_trained_bucket_that_holds_the_fill(length, limit, trained, canvas):
    assert bucket(length, limit, trained) == canvas


def test_a_checkpoint_trained_on_one_canvas_length_always_gets_that_canvas(engine, tiny_model_dir, tmp_path):
    """The shipped starter says only `canvas_length` (64): it was trained on nothing shorter, and on a 16-token
    canvas reads worse than unigram (bench/RESULTS.md), so a short fill runs on its whole canvas."""
    folder = tmp_path / "one-length"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "diffusion_infill.json").write_text(json.dumps({"max_prompt_tokens": 64, "canvas_length": 32}))
    one_length = InfillEngine(EngineConfig(model=str(folder), max_steps=3, threads=1))
    assert one_length.describe()["canvas_lengths"] == [32] and {c for _, c in one_length.warm_shapes()} == {32}
    result = one_length.fill("def f():\n    return ", "\n", lengths=[8], seed=0)
    assert result.timings["canvas_length"] == 32 and result.best.length <= 8
    # the same weights said to be trained on 16 and 32 (tiny_model_dir) get the short fill's canvas trimmed
    assert engine.fill("def f():\n    return ", "\n", lengths=[8], seed=0).timings["canvas_length"] == 16
    assert engine.describe()["canvas_lengths"] == [16, 32]
    # one that names none gets every bucket up to its canvas, listed as numbers like the others
    (folder / "diffusion_infill.json").write_text(json.dumps({"max_prompt_tokens": 64}))
    any_length = InfillEngine(EngineConfig(model=str(folder), max_steps=3, threads=1))
    assert any_length.describe()["canvas_lengths"] == [16, 32]


def test_a_passed_deadline_stops_at_the_first_check_with_a_whole_guess(engine):
    result = engine.fill("def f():\n    return ", "\n", lengths=[8], budget_ms=1e-6)
    # The deadline is checked where the host syncs anyway (every step on a CPU, every few on a GPU), and only from
    # the MIN_BUDGET_STEPS-th step on: before, a slow encode left one pass over random tokens as the answer.
    settings = engine._settings()
    least = min(MIN_BUDGET_STEPS, settings.steps)
    assert settings.steps > MIN_BUDGET_STEPS
    assert result.best is not None and least <= result.best.steps < least + settings.sync_every
    assert result.timings["canvas_length"] == 16 and result.best.length <= 8


def test_pace_is_measured_per_shape_and_the_first_run_is_not_counted(tiny_model_dir):
    engine = InfillEngine(EngineConfig(model=str(tiny_model_dir), max_steps=4, threads=1))
    engine.fill("a = ", "\n", lengths=[8])
    assert engine.pace_ms == {}                      # the first run at (1, 16) paid one-time costs
    engine.fill("a = ", "\n", lengths=[8])
    assert set(engine.pace_ms) == {(1, 16)} and engine.pace_ms[(1, 16)] > 0
    users_counts = dict(engine.prefix_stats)
    measured = engine.measure_pace(shapes=((2, 16), (1, 32)), steps=2)
    assert set(measured) == {"1x16", "2x16", "1x32"} and all(ms > 0 for ms in measured.values())
    assert engine.describe()["ms_per_step"] == measured
    assert users_counts["prompt_tokens"] > 0 and engine.prefix_stats == users_counts  # measuring is not counted
    with pytest.raises(Cancelled):                   # a newer load replaced this engine: stopped at the first step
        engine.measure_pace(cancel=lambda: True)
    assert engine.prefix_stats == users_counts and engine.prompt_cache is None


def test_a_special_token_the_model_writes_ends_the_middle(engine):
    """A FIM sentinel (or <bos>, <mask>) in the canvas is never code: the middle stops there, as at <eos>."""
    text_ids = engine._encode_text("value = 1")
    sentinel = engine.tokenizer.convert_tokens_to_ids("<fim_prefix>")
    tokens = text_ids + [sentinel] + engine._encode_text(" + 2") + [engine.eos_id]
    item = engine._candidate(tokens, [0.0] * len(tokens), len(tokens), 32, 3)
    assert item.text == "value = 1" and item.ended and item.length == len(text_ids)
    written = engine._encode_text("x = '<fim_prefix>'")          # the same characters typed as code are text
    assert sentinel not in written
    assert engine._candidate(written, [0.0] * len(written), len(written), 32, 3).text == "x = '<fim_prefix>'"


def test_a_budget_never_adds_steps_to_the_users_setting(tiny_model_dir):
    engine = InfillEngine(EngineConfig(model=str(tiny_model_dir), max_steps=2, threads=1))
    engine.pace_ms[(1, 16)] = 1e-9   # however much time is left
    result = engine.fill("x = ", "\n", lengths=[8], budget_ms=45_000)
    assert result.timings["planned_steps"] == 2


# ---- prompts longer than the sliding window -----------------------------------------------------------------------

WINDOW = 8   # a sliding window far shorter than the prompts below (DiffusionGemma 26B-A4B: 1024 of up to 128K)


@pytest.fixture(scope="module")
def windowed_loaded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("windowed-diffusion-gemma")
    tokenizer = AutoTokenizer.from_pretrained(CODE_TOKENIZER_DIR)
    config = tiny_config(vocab_size=len(tokenizer), canvas_length=32)
    config.text_config.sliding_window = WINDOW
    torch.manual_seed(1)
    DiffusionGemmaForBlockDiffusion(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "diffusion_infill.json").write_text(json.dumps({"max_prompt_tokens": 64, "canvas_length": 32}))
    return InfillEngine(EngineConfig(model=str(folder), max_steps=4, threads=1)).loaded


def reference_logits(model, prompt: list[int], canvas: torch.Tensor) -> torch.Tensor:
    """transformers' own path: the whole prompt through the encoder into its DynamicCache (whose sliding layers keep
    only their window), then one decoder pass with the masks transformers builds itself."""
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache(config=model.config.text_config)
    with torch.no_grad():
        model.model.encoder(input_ids=torch.tensor([prompt]), **with_cache(model, cache),
                            position_ids=torch.arange(len(prompt)).unsqueeze(0))
        cache.batch_repeat_interleave(canvas.shape[0])
        positions = torch.arange(len(prompt), len(prompt) + canvas.shape[1]).unsqueeze(0)
        return model(**with_cache(model, cache), decoder_input_ids=canvas, decoder_position_ids=positions).logits


def test_prompts_longer_than_the_window_read_as_transformers_reads_them_also_after_reuse(windowed_loaded):
    dynamic = InfillEngine(EngineConfig(model=windowed_loaded.source, threads=1), loaded=windowed_loaded)
    assert dynamic.window == WINDOW and dynamic.max_prompt_tokens == 64      # the plain path reads past the window
    canvas = torch.randint(0, dynamic.vocab_size, (2, 16), generator=torch.Generator().manual_seed(2))
    first = list(range(10, 50))                         # 40 tokens: five windows
    edited = first[:30] + [7, 8, 9]                     # a keystroke changed the tail, 22 tokens past the window
    for prompt in (first, edited):
        expected = reference_logits(dynamic.model, prompt, canvas)
        ours = dynamic._decoder_step(encoded_for_decoder(dynamic, prompt, 2), len(prompt), 16)(canvas, None)
        assert torch.allclose(ours, expected, atol=1e-4)
    assert dynamic.prefix_stats["last_reused"] == 30    # the edit re-encoded only its own tail


def test_the_static_cache_and_its_masks_also_read_prompts_longer_than_the_window(windowed_loaded):
    """The engine keeps its static path within the window (every step reads every slot); the cache and the masks
    themselves read a longer prompt as transformers does, reuse included."""
    from engine.fast_path import StaticPrompt

    static = InfillEngine(EngineConfig(model=windowed_loaded.source, threads=1, fast_path="static"),
                          loaded=windowed_loaded)
    assert static.max_prompt_tokens == WINDOW
    static.static = StaticPrompt(static.model, 64)
    canvas = torch.randint(0, static.vocab_size, (2, 16), generator=torch.Generator().manual_seed(2))
    first = list(range(10, 50))
    edited = first[:30] + [7, 8, 9]
    assert torch.allclose(static_logits(static, first, canvas), reference_logits(static.model, first, canvas),
                          atol=1e-4)
    assert static.static.encode(edited, reuse=True) == 30
    positions = torch.arange(len(edited), len(edited) + 16).unsqueeze(0)
    with torch.no_grad():
        reused = static.model(**with_cache(static.model, static.static.for_rows(2)), decoder_input_ids=canvas,
                              decoder_position_ids=positions,
                              decoder_attention_mask=decoder_masks(len(edited), 64, 16, WINDOW, "cpu")).logits
    assert torch.allclose(reused, reference_logits(static.model, edited, canvas), atol=1e-4)


def test_the_decoder_reads_only_the_window_of_a_long_prompt(windowed_loaded):
    """The kept cache holds the whole prompt; reading all of it would give other logits than transformers'."""
    engine = InfillEngine(EngineConfig(model=windowed_loaded.source, threads=1), loaded=windowed_loaded)
    prompt = list(range(10, 50))
    canvas = torch.randint(0, engine.vocab_size, (1, 16), generator=torch.Generator().manual_seed(3))
    encoded_for_decoder(engine, prompt, 1)
    whole = engine.prompt_cache
    assert whole.layers[0].keys.shape[2] == len(prompt)              # a sliding layer, every token kept
    positions = torch.arange(len(prompt), len(prompt) + 16).unsqueeze(0)
    with torch.no_grad():
        unmasked = engine.model(**with_cache(engine.model, whole), decoder_input_ids=canvas,
                                decoder_position_ids=positions).logits
    assert not torch.allclose(unmasked, reference_logits(engine.model, prompt, canvas), atol=1e-3)


def test_long_prompts_keep_reuse_while_typing(windowed_loaded):
    reusing = InfillEngine(EngineConfig(model=windowed_loaded.source, max_steps=4, threads=1), loaded=windowed_loaded)
    fresh = InfillEngine(EngineConfig(model=windowed_loaded.source, max_steps=4, threads=1, reuse_prefix=False),
                         loaded=windowed_loaded)
    prefix = "".join(f"value_{i} = {i} * {i}\n" for i in range(12)) + "total = "
    for typed in ("", "va", "value_1 +"):                 # keystrokes on a prompt far longer than the window
        ours = reusing.fill(prefix + typed, "\nprint(total)\n", lengths=[6, 12], seed=4)
        theirs = fresh.fill(prefix + typed, "\nprint(total)\n", lengths=[6, 12], seed=4)
        assert [c.text for c in ours.items] == [c.text for c in theirs.items]
        assert ours.timings["prompt_tokens"] > 4 * WINDOW
    assert reusing.prefix_stats["reused_tokens"] > 0 and fresh.prefix_stats["reused_tokens"] == 0


def test_cuda_graphs_only_where_the_compiled_step_stays_on_the_gpu(monkeypatch):
    """transformers' routed experts read their group offsets on the host unless the weights are bf16 on compute
    capability 8.0+: a CUDA-graph capture of such a step fails, so fp16 or float32 weights, or an older GPU, get
    the step without graphs (the load failed at warm-up)."""
    from engine.fast_path import cuda_graphs_fit

    with torch.device("meta"):
        model = DiffusionGemmaForBlockDiffusion(tiny_config(vocab_size=64, canvas_length=16))
    cuda = torch.device("cuda", 0)
    for capability, dtype, fits in [((9, 0), torch.bfloat16, True), ((8, 0), torch.bfloat16, True),
                                    ((9, 0), torch.float16, False), ((9, 0), torch.float32, False),
                                    ((7, 5), torch.bfloat16, False)]:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        model.to(dtype)
        assert cuda_graphs_fit(model, cuda) is fits, (capability, dtype)
    assert not cuda_graphs_fit(model.to(torch.bfloat16), torch.device("cpu"))


@pytest.fixture(scope="module")
def pinned_engine(tmp_path_factory):
    """A tiny random DiffusionGemma whose tokenizer has no FIM sentinels (a byte-level BPE trained here in a
    moment, with <pad>, <eos> and <bos> only): the engine must pin the suffix on the canvas instead."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from engine.configs import tiny_config

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    code = [f"def total_{i}(values):\n    return sum(value * {i} for value in values)\n" for i in range(50)]
    bpe.train_from_iterator(code, trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<eos>", "<bos>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>")
    folder = tmp_path_factory.mktemp("pinned-diffusion-gemma")
    torch.manual_seed(0)
    DiffusionGemmaForBlockDiffusion(tiny_config(vocab_size=len(tokenizer), canvas_length=128)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return InfillEngine(EngineConfig(model=str(folder), max_steps=4, threads=1))


def test_without_fim_sentinels_the_suffix_head_is_pinned_after_each_rows_limit(pinned_engine, monkeypatch):
    from engine.infill_engine import PINNED_SUFFIX_TOKENS

    seen = {}
    run = pinned_engine._run

    def watched(prompt, canvas, pinned, *args, **kwargs):
        seen.update(prompt=list(prompt), canvas=canvas.clone(), pinned=pinned.clone())
        return run(prompt, canvas, pinned, *args, **kwargs)

    monkeypatch.setattr(pinned_engine, "_run", watched)
    prefix, suffix = "def total_3(values):\n    return ", "\n\ndef total_4(values):\n    return sum(values)\n"
    result = pinned_engine.fill(prefix, suffix, lengths=[8, 16], seed=1)
    assert pinned_engine.layout == result.layout == "suffix-pinned"
    head = pinned_engine._encode_text(suffix)[:PINNED_SUFFIX_TOKENS]
    assert seen["prompt"] == [pinned_engine.tokenizer.bos_token_id, *pinned_engine._encode_text(prefix)]
    for row, limit in enumerate([8, 16]):
        canvas, pinned = seen["canvas"][row], seen["pinned"][row]
        assert canvas[limit:limit + len(head)].tolist() == head and pinned[limit:].all() and not pinned[:limit].any()
        assert (canvas[limit + len(head):] == pinned_engine.pad_id).all()
    assert all(item.length <= 16 for item in result.items)
    # The pinned tokens make each common plan's canvas a bucket larger; at a file's end nothing is pinned. Those are
    # the shapes compiled at load.
    assert pinned_engine.warm_shapes() == ((3, 64), (1, 64), (2, 128), (1, 128), (3, 32), (1, 32), (2, 64))
    at_file_end = {}
    monkeypatch.setattr(pinned_engine, "_run", lambda prompt, canvas, *args, **kwargs: at_file_end.update(
        shape=tuple(canvas.shape)) or run(prompt, canvas, *args, **kwargs))
    pinned_engine.fill(prefix + "sum(values)\n\n", "", lengths=[8, 16, 32], seed=1)
    assert at_file_end["shape"] in pinned_engine.warm_shapes()


def test_without_fim_sentinels_the_prefix_gets_the_whole_context(pinned_engine):
    """The suffix head sits on the canvas, not in the prompt, and there are no sentinels: only the <bos> shares the
    budget with the prefix."""
    narrower = InfillEngine(EngineConfig(model=pinned_engine.loaded.source, max_steps=2, threads=1,
                                         max_prompt_tokens=40), loaded=pinned_engine.loaded)
    prefix = "".join(f"def total_{i}(values):\n    return sum(values)\n" for i in range(20))
    suffix = "\n\ndef total_4(values):\n    return sum(value * 4 for value in values)\n" * 5
    prompt, pinned_suffix = narrower._prompt(prefix, suffix)
    assert prompt == [narrower.tokenizer.bos_token_id, *narrower._encode_text(prefix)[-39:]]
    assert pinned_suffix == narrower._encode_text(suffix)[:8]


def test_without_fim_sentinels_the_context_plan_spends_on_the_prefix_what_the_suffix_does_not_use(pinned_engine):
    """The pinned layout reads 8 suffix tokens: a plan that kept a third of the budget for the suffix left the
    prompt two-thirds empty while cutting the prefix's code nearest the cursor."""
    from infill.pipeline import InfillRequest, plan_for

    narrower = InfillEngine(EngineConfig(model=pinned_engine.loaded.source, max_steps=2, threads=1,
                                         max_prompt_tokens=120), loaded=pinned_engine.loaded)
    lines = "".join(f"def total_{i}(values):\n    return sum(value * {i} for value in values)\n" for i in range(40))
    text = lines + "def total_x(values):\n    return " + "\n" + lines
    cursor = text.index("    return \n") + len("    return ")
    plan = plan_for(InfillRequest(text=text, mode="inline", start=cursor, end=cursor, language_id="python"),
                    narrower)
    prompt, pinned_suffix = narrower._prompt(plan.context.prefix, plan.context.suffix)
    # Of 120: the <bos>, an eighth kept to type into and whole lines leave about 91 (a third held back for the
    # suffix left 65; charging 3 sentinels the layout lacks and the 8 pinned suffix tokens, which sit on the
    # canvas, left 85).
    assert len(prompt) >= 0.75 * narrower.max_prompt_tokens and len(pinned_suffix) == 8
    assert narrower.prompt_overhead == 1 and narrower.suffix_tokens_read == 0
    assert plan.context.suffix.startswith("\ndef total_0")   # cleaning still reads the suffix's lines


def test_without_fim_sentinels_a_fill_longer_than_a_row_continues(pinned_engine, monkeypatch):
    """A suffix-pinned row holds the canvas less its <eos> slot and the 8 pinned suffix tokens (119 of 128): a fill
    asking for more, though less than the canvas, still goes on in a second block."""
    monkeypatch.setattr(pinned_engine, "end_ids", set())     # random weights: keep every row from ending
    blocks = []
    fill = pinned_engine._fill
    monkeypatch.setattr(pinned_engine, "_fill", lambda *args, **kwargs: blocks.append(args[2]) or fill(*args,
                                                                                                          **kwargs))
    suffix = "\n\ndef total_4(values):\n    return sum(values)\n"
    result = pinned_engine.fill("def total_3(values):\n    ", suffix, max_new_tokens=124, lengths=[124], seed=1)
    assert blocks[0] == [124] and len(blocks) >= 2 and "block by block" in result.reason
    assert 119 < result.best.length <= 124 and not result.best.ended


def test_without_bos_a_fill_at_the_start_of_a_file_reads_an_end_marker(pinned_engine, monkeypatch):
    """No <bos> and an empty prefix made an empty prompt: the encoder raised a RuntimeError (a reshape of 0
    elements) instead of filling."""
    monkeypatch.setattr(pinned_engine, "bos_id", None)
    assert pinned_engine._prompt("", "x = 1\n")[0] == [pinned_engine.eos_id]
    result = pinned_engine.fill("", "x = 1\n", max_new_tokens=4, lengths=[4], seed=0)
    assert result.best is not None and result.best.length <= 4


def test_with_fim_sentinels_the_common_plans_fit_their_own_buckets():
    engine = InfillEngine(EngineConfig(max_steps=2, threads=1))   # the embedded model (training/: FIM sentinels)
    # the checkpoint names the canvases it reads well (the starter reads 16 worse than unigram: bench/RESULTS.md);
    # each common plan and a short fill get the smallest of those that holds them
    trained = json.loads((Path(DEFAULT_MODEL_DIR) / "diffusion_infill.json").read_text())["canvas_lengths"]
    canvases = [bucket(longest, max(trained), tuple(sorted(trained))) for _, longest in WARM_PLANS]
    shapes = [shape for (rows, _), canvas in zip(WARM_PLANS, canvases) for shape in ((rows, canvas), (1, canvas))]
    assert engine.layout == "spm-sentinels" and engine.warm_shapes() == tuple(dict.fromkeys(shapes))
    assert engine.describe()["canvas_lengths"] == sorted(trained)
    fill = engine.fill("def f():\n    return ", "\n", lengths=[8], seed=0)
    assert fill.timings["canvas_length"] == min(trained)


def test_only_weights_converted_on_loading_count_against_memory(tmp_path):
    """Weights stored in the dtype asked for stay mapped from the file; others are converted into memory. The
    files counted are those transformers reads (the index's), not every safetensors file in the folder."""
    total = next(int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    rows = total // 2 // 256      # bfloat16 weights as large as this machine's memory

    def sparse_safetensors(path, rows):
        header = json.dumps({"w": {"dtype": "BF16", "shape": [rows, 256], "data_offsets": [0, rows * 512]}}).encode()
        with open(path, "wb") as file:
            file.write(len(header).to_bytes(8, "little") + header)
            file.truncate(8 + len(header) + rows * 512)

    sparse_safetensors(tmp_path / "model.safetensors", rows)
    loading.check_fits_in_memory(loading.stored_weights(tmp_path), torch.bfloat16, "big")   # read from the file as needed
    with pytest.raises(ModelLoadError, match="converted to float32 take .* GB of memory available"):
        loading.check_fits_in_memory(loading.stored_weights(tmp_path), torch.float32, "big")
    # Sharded: the index names small shards; the large single file beside them is not what loads.
    sparse_safetensors(tmp_path / "model-00001-of-00001.safetensors", 4)
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"w": "model-00001-of-00001.safetensors"}}))
    assert loading.converted_weights(loading.stored_weights(tmp_path), torch.float32) == 4 * 256
    loading.check_fits_in_memory(loading.stored_weights(tmp_path), torch.float32, "sharded")


# ---- the sampler's behaviours, driven by a scripted decoder (what it feeds back, when it stops, what it revises) --

V_SCRIPTED = 8


def scripted_step(tokens_per_step: list[list[int]], calls: list):
    """A decoder_step that is sure of `tokens_per_step[k]` (one token per canvas position) at its k-th call (the
    last list repeats), recording the self-conditioning logits it is given."""
    def step(canvas, sc_logits):
        calls.append(None if sc_logits is None else sc_logits.clone())
        return sure_logits(tokens_per_step[min(len(calls), len(tokens_per_step)) - 1]).expand(
            *canvas.shape, V_SCRIPTED)                                                  # (B, C, V)
    return step


def test_a_sure_and_stable_canvas_stops_early_and_a_changing_one_runs_every_step():
    canvas, pinned = torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.bool)
    settings = SamplerSettings(steps=10)
    calls = []
    stable = denoise(scripted_step([[1, 2, 3, 4]], calls), canvas, pinned, settings, V_SCRIPTED,
                     torch.Generator().manual_seed(0))
    # The first step has nothing to compare with; the second sees the same sure guess and stops.
    assert stable.steps.tolist() == [2] and len(calls) == 2 and stable.tokens.tolist() == [[1, 2, 3, 4]]
    calls = []
    changing = denoise(scripted_step([[1, 2, 3, 4], [1, 2, 3, 5]] * 5, calls), canvas, pinned, settings,
                       V_SCRIPTED, torch.Generator().manual_seed(0))
    assert changing.steps.tolist() == [10] and len(calls) == 10


def test_each_step_is_conditioned_on_the_last_steps_temperature_scaled_logits():
    canvas, pinned = torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.bool)
    calls = []
    settings = SamplerSettings(steps=3, stop_entropy=0.0)
    denoise(scripted_step([[1, 2, 3, 4], [4, 3, 2, 1]], calls), canvas, pinned, settings, V_SCRIPTED,
            torch.Generator().manual_seed(0))
    assert calls[0] is None
    assert torch.allclose(calls[1], sure_logits([1, 2, 3, 4]) / 0.8)                  # step 0 ran at 0.8
    assert torch.allclose(calls[2], sure_logits([4, 3, 2, 1]) / (0.4 + 0.4 * 2 / 3))   # step 1 of 3
    calls.clear()
    denoise(scripted_step([[1, 2, 3, 4]], calls), canvas, pinned, dataclasses.replace(settings, self_conditioning=False),
            V_SCRIPTED, torch.Generator().manual_seed(0))
    assert calls == [None, None, None]


def sure_logits(tokens: list[int]) -> torch.Tensor:
    """What scripted_step returns for one row sure of `tokens`: (1, C, V)."""
    return torch.full((1, len(tokens), V_SCRIPTED), -30.0).scatter_(-1, torch.tensor([tokens]).unsqueeze(-1), 30.0)


def test_the_temperature_schedule_is_transformers_own():
    """0.8 at the first step down to 0.4 linearly, as transformers' DiffusionGemma `generate` schedules it (its
    step counter counts the steps left, so its last step sits one step above t_min)."""
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import (
        LinearTemperatureScheduleLogitsProcessor)

    from engine.sampler import temperature_schedule

    for steps in (4, 16, 48):
        settings = SamplerSettings(steps=steps)
        theirs = LinearTemperatureScheduleLogitsProcessor(t_min=0.4, t_max=0.8, max_denoising_steps=steps)
        expected = [float(theirs(None, torch.ones(1), cur_step=steps - step)) for step in range(steps)]
        assert torch.allclose(temperature_schedule(settings, "cpu"), torch.tensor(expected))
        assert expected[0] == pytest.approx(1 / 0.8) and expected[-1] < 1 / 0.4


def test_an_accepted_token_is_revised_when_the_model_changes_its_mind_but_not_under_masked_noise():
    canvas, pinned = torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.bool)
    script = [[1, 2, 3, 4], [5, 2, 3, 4]]   # sure of 1 at position 0, then sure of 5 there
    settings = SamplerSettings(steps=4, stop_entropy=0.0)
    revised = denoise(scripted_step(script, []), canvas, pinned, settings, V_SCRIPTED,
                      torch.Generator().manual_seed(0))
    assert revised.tokens.tolist() == [[5, 2, 3, 4]]   # uniform state: kept tokens are judged again
    kept = denoise(scripted_step(script, []), canvas, pinned, dataclasses.replace(settings, mask_id=7),
                   V_SCRIPTED, torch.Generator().manual_seed(0))
    assert kept.tokens.tolist() == [[1, 2, 3, 4]]      # masked noise: a decided position is final


def test_more_threads_than_cores_are_capped_with_a_note(tiny_model_dir):
    """`threads 1024` on a 2-core machine: the threads only waited for one another (a fill ran for minutes). The
    cores are those the process may use (`taskset -c 0` leaves one of the machine's two)."""
    import os

    before, allowed = torch.get_num_threads(), os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})   # as under `taskset -c 0`
        engine = InfillEngine(EngineConfig(model=str(tiny_model_dir), threads=2))
        assert torch.get_num_threads() == 1
        assert any("threads 2 is more than this process may use (1 core)" in n for n in engine.notes), engine.notes
    finally:
        os.sched_setaffinity(0, allowed)
        torch.set_num_threads(before)
