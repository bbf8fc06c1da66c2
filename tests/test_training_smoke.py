"""CPU smoke runs of the real training pipeline: corpus -> tokenizer -> shards -> diffusion (uniform and masked
noise, resumed across chunks) and the AR twin, each saved and loaded back the way the engines load them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion

from engine.configs import BOS_ID, EOS_ID, PAD_ID
from engine.loading import DEFAULT_MODEL_DIR
from engine.prompt import encode_text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # training/ is a folder of scripts run from the repository root, not installed

from training import shards as shards_mod  # noqa: E402
from training import train, train_ar  # noqa: E402
from training.tokenizer import SPECIAL_TOKENS, train_tokenizer  # noqa: E402
SMALL = ["--batch", "8", "--prompt-len", "64", "--canvas", "32", "--warmup", "1", "--lr", "5e-3", "--threads", "2",
         "--eval-batches", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The project's own Python as a small corpus, a tokenizer trained on it, and its token shards."""
    tmp = tmp_path_factory.mktemp("training")
    corpus = tmp / "corpus.jsonl"
    with open(corpus, "w") as sink:
        for folder in ("engine", "infill", "training", "lsp_server"):
            for path in sorted((ROOT / folder).glob("*.py")):
                sink.write(json.dumps({"dist": "diffusion-infill", "path": f"{folder}/{path.name}",
                                       "text": path.read_text()}) + "\n")
    tokenizer = train_tokenizer(corpus, vocab_size=1024)
    tokenizer.save_pretrained(tmp / "tok")
    meta = shards_mod.write_shards(corpus, tmp / "tok", tmp / "shards")
    return tmp, meta


def test_tokenizer_keeps_the_special_ids_and_round_trips_code(prepared):
    tmp, _ = prepared
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp / "tok")
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert (tok.pad_token_id, tok.eos_token_id, tok.bos_token_id) == (PAD_ID, EOS_ID, BOS_ID)
    assert tok.mask_token == "<mask>"
    code = "def add(a, b):\n\t\treturn a + b  # é ✓\n"
    assert tok.decode(tok.encode(code)) == code


def test_shards_hold_the_whole_corpus_as_uint16_with_bos_at_each_file(prepared):
    tmp, meta = prepared
    train_stream, val_stream, loaded = shards_mod.load_shards(tmp / "shards", tmp / "tok")
    assert loaded == meta and meta["dtype"] == "uint16"
    assert all((tmp / "shards" / n).stat().st_size <= 16 * 1024 * 1024 for n in meta["train_shards"])
    files = sum(1 for _ in open(tmp / "corpus.jsonl"))
    assert int((train_stream == BOS_ID).sum() + (val_stream == BOS_ID).sum()) == files
    assert len(val_stream) > 0 and train_stream.max() < 1024


def test_a_budget_too_small_for_the_corpus_skips_only_the_files_that_do_not_fit(prepared, tmp_path):
    tmp, whole = prepared
    big = {"dist": "big", "path": "big.py", "text": "value = 1\n" * 20_000}
    small = [{"dist": "small", "path": f"s{i}.py", "text": f"x_{i} = {i}\n"} for i in range(600)]
    corpus = tmp_path / "corpus.jsonl"
    # the big file comes first in its chunk of 512: the files after it, in the same chunk, must still be used
    corpus.write_text("".join(json.dumps(r) + "\n" for r in [small[0], big, *small[1:]]))
    meta = shards_mod.write_shards(corpus, tmp / "tok", tmp_path / "shards", max_mb=0.05)
    train_stream, val_stream, _ = shards_mod.load_shards(tmp_path / "shards", tmp / "tok")
    assert meta["files"] == 600 and meta["corpus_files"] == 601
    assert int((train_stream == BOS_ID).sum() + (val_stream == BOS_ID).sum()) == 600


def test_shards_of_another_tokenizer_are_refused(prepared, tmp_path):
    tmp, _ = prepared
    other = tmp_path / "other"
    other.mkdir()
    (other / "tokenizer.json").write_text("{}")
    with pytest.raises(SystemExit, match="rebuild the shards"):
        shards_mod.load_shards(tmp / "shards", other)


def test_shards_and_tokenizer_drop_held_out_files_a_corpus_still_carries(prepared, tmp_path):
    """A corpus written before the held-out list grew (or by hand) holds a held-out distribution's file and a
    vendored copy of one: neither reaches the vocabulary or the token stream."""
    tmp, _ = prepared
    from training.tokenizer import iter_texts

    kept = [{"dist": "kept", "path": f"kept/m{i}.py", "text": f"kept_{i} = {i}\n"} for i in range(3)]
    held = [{"dist": "attrs", "path": "attr/_make.py", "text": "held_out_marker = 1\n"},
            {"dist": "hostlib", "path": "hostlib/_vendor/rich/console.py", "text": "held_out_marker = 2\n"}]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in [kept[0], *held, *kept[1:]]))
    assert list(iter_texts(corpus, 10**6)) == [r["text"] for r in kept]
    meta = shards_mod.write_shards(corpus, tmp / "tok", tmp_path / "shards")
    train_stream, val_stream, _ = shards_mod.load_shards(tmp_path / "shards", tmp / "tok")
    assert (meta["files"], meta["corpus_files"], meta["holdout_files_dropped"]) == (3, 5, 2)
    assert int((train_stream == BOS_ID).sum() + (val_stream == BOS_ID).sum()) == 3


def test_shards_built_under_another_held_out_rule_are_refused(prepared, tmp_path):
    tmp, _ = prepared
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tmp / "shards", old)
    meta = json.loads((old / "meta.json").read_text())
    del meta["holdout_sha1"]   # shards written before the rule was recorded
    (old / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit, match="another held-out rule"):
        shards_mod.load_many([tmp / "shards", old], tmp / "tok")


def test_uniform_diffusion_lowers_held_out_loss_resumes_across_chunks_and_saves_a_loadable_model(prepared):
    tmp, _ = prepared
    run = tmp / "uniform"
    common = ["--config", "tiny", "--shards", str(tmp / "shards"), "--tokenizer", str(tmp / "tok"), "--run", str(run),
              "--total-steps", "20", "--canvases-per-context", "2", "--eval-every", "10", "--save-dtype", "bfloat16",
              *SMALL]
    train.main([*common, "--chunk-steps", "10"])
    first_chunk = json.loads((run / "metrics.json").read_text())
    assert first_chunk["steps"] == 10 and not first_chunk["done"]
    assert (run / "checkpoint.json").is_file()
    # A chunk with another run flag (masked noise, or a default where the run had a value) is refused, not
    # trained on and labelled as the run's model.
    with pytest.raises(SystemExit, match="--noise uniform .now masked.*--canvases-per-context 2 .now 1."):
        at = common.index("--canvases-per-context")
        train.main([*common[:at], *common[at + 2:], "--noise", "masked"])
    train.main(common)  # the second chunk resumes from the checkpoint
    final = json.loads((run / "metrics.json").read_text())
    assert final["steps"] == 20 and final["done"]
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 21))  # one record per step, no step trained twice
    first_eval = next(r for r in log if "val_ce_half_noise" in r)
    assert final["val_ce_half_noise"] < first_eval["val_ce_half_noise"] - 0.5
    # each step trains one of the engine's canvas lengths up to --canvas (16 or 32 here), both drawn in 20 steps
    per_length = 8 * 2
    assert 20 * per_length * 16 < final["canvas_tokens_seen"] < 20 * per_length * 32
    assert final["canvas_tokens_seen"] % (per_length * 16) == 0 and final["canvas_tokens_per_s"] > 0
    model = DiffusionGemmaForBlockDiffusion.from_pretrained(run / "model")
    assert model.config.canvas_length == 32 and model.dtype == torch.bfloat16  # half the bytes in models/
    meta = json.loads((run / "model" / "diffusion_infill.json").read_text())
    assert meta["layout"] == "spm-sentinels" and meta["noise"] == "uniform" and meta["max_prompt_tokens"] == 64
    assert meta["canvas_lengths"] == [16, 32] == final["canvas_lengths"]   # the engine trims canvases to these

    from engine import EngineConfig, InfillEngine  # the engine loads it as it loads the shipped model

    engine = InfillEngine(EngineConfig(model=str(run / "model"), max_steps=4, threads=2))
    result = engine.fill("def add(a, b):\n    return ", "\n", lengths=[8], seed=0)
    assert result.best is not None and result.layout == "spm-sentinels"


def test_masked_noise_trains_on_masked_positions_and_records_its_variant(prepared):
    tmp, _ = prepared
    run = tmp / "masked"
    train.main(["--config", "tiny", "--noise", "masked", "--shards", str(tmp / "shards"), "--tokenizer",
                str(tmp / "tok"), "--run", str(run), "--total-steps", "10", "--eval-every", "10", *SMALL])
    final = json.loads((run / "metrics.json").read_text())
    assert final["noise"] == "masked" and final["steps"] == 10
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert final["val_ce_half_noise"] < log[0]["val_ce_half_noise"]
    assert json.loads((run / "model" / "diffusion_infill.json").read_text())["noise"] == "masked"


@pytest.mark.parametrize("trainer", [train, train_ar])
def test_a_timing_only_run_logs_its_steps_and_saves_nothing(prepared, trainer):
    """gpu_session's probe: its folders are deleted at once, so a checkpoint, a final evaluation and a saved model
    would only spend the GPU's minutes."""
    tmp, _ = prepared
    run = tmp / f"timing-{trainer.__name__.rsplit('.', 1)[-1]}"
    trainer.main(["--config", "tiny", "--shards", str(tmp / "shards"), "--tokenizer", str(tmp / "tok"),
                  "--run", str(run), "--total-steps", "1000000", "--chunk-steps", "4", "--eval-every", "1000000",
                  "--checkpoint-every", "2", "--timing-only", *SMALL])
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [1, 2, 3, 4] and all("time_s" in record for record in log)
    assert sorted(path.name for path in run.iterdir()) == ["log.jsonl"]


def test_masked_noise_puts_mask_exactly_where_it_weighs(prepared):
    clean = torch.randint(10, 100, (4, 32))
    clean[:, 20:] = PAD_ID
    gen = torch.Generator().manual_seed(0)
    noisy, noised = train.noise_canvas(clean, "masked", 1024, 6, gen, noise_level=0.5)
    assert torch.equal(noisy == 6, noised) and torch.equal(noisy[~noised], clean[~noised])
    weights = train.canvas_weights(clean, noised, "masked")
    assert torch.all(weights[~noised] == 0) and torch.all(weights[noised & (clean != PAD_ID)] == 1)
    uniform_weights = train.canvas_weights(clean, noised, "uniform")
    assert torch.all(uniform_weights[~noised & (clean != PAD_ID)] == train.CLEAN_WEIGHT)


def test_a_run_killed_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    """The old parts were deleted before the new ones were written: a kill then (a time limit) left no checkpoint,
    and the next chunk started the run over from step 0."""
    from training import common

    monkeypatch.setattr(common, "PART_BYTES", 1000)   # several parts
    first = {"step": 1, "weights": torch.arange(1000.0)}
    common.save_checkpoint(tmp_path, first)
    written = []
    real_write = Path.write_bytes

    def killed_after_one_part(self, data):
        if written:
            raise KeyboardInterrupt("killed")
        written.append(self.name)
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", killed_after_one_part)
    with pytest.raises(KeyboardInterrupt):
        common.save_checkpoint(tmp_path, {"step": 2, "weights": torch.zeros(1000)})
    monkeypatch.setattr(Path, "write_bytes", real_write)
    loaded = common.load_checkpoint(tmp_path, torch.device("cpu"))
    assert loaded["step"] == 1 and torch.equal(loaded["weights"], first["weights"])
    for step in (3, 4, 5):   # later saves alternate between two sets of parts; no stale part is left behind
        common.save_checkpoint(tmp_path, {"step": step, "weights": torch.full((1000,), float(step))})
        assert common.load_checkpoint(tmp_path, torch.device("cpu"))["step"] == step
        index = json.loads((tmp_path / "checkpoint.json").read_text())["parts"]
        assert sorted(p.name for p in tmp_path.glob("checkpoint*.pt.*")) == sorted(index)


def test_some_rows_train_with_the_length_limit_the_engine_pins(prepared):
    """The engine pins <eos> at a row's limit and padding after it; training shows the same on some rows, at a
    limit anywhere from the row's own <eos> on, given clean at every noise level and weighing nothing."""
    clean = torch.randint(10, 100, (400, 32))
    ends = torch.randint(0, 31, (400,))
    for row, end in enumerate(ends.tolist()):
        clean[row, end] = EOS_ID
        clean[row, end + 1:] = PAD_ID
    clean[:50] = torch.randint(10, 100, (50, 32))   # rows that do not end (continuation): never capped
    gen = torch.Generator().manual_seed(0)
    capped_canvas, pinned = train.engine_caps(clean, gen)
    assert not pinned[:50].any() and torch.equal(capped_canvas[~pinned], clean[~pinned])
    capped = pinned.any(1)
    assert 100 < int(capped.sum()) < 250   # about half of the 350 rows that end
    limits = []
    for row in capped.nonzero().flatten().tolist():
        limit = int(pinned[row].int().argmax())
        assert pinned[row, limit:].all() and limit >= int(ends[row])   # from the limit to the end
        assert capped_canvas[row, limit] == EOS_ID and (capped_canvas[row, limit + 1:] == PAD_ID).all()
        limits.append(limit > int(ends[row]))
    assert sum(limits) > len(limits) // 2   # mostly room left after the middle's own <eos>
    noisy, noised = train.noise_canvas(capped_canvas, "uniform", 1024, None, gen, noise_level=1.0, pinned=pinned)
    assert torch.equal(noised, ~pinned) and torch.equal(noisy[pinned], capped_canvas[pinned])
    assert torch.all(train.canvas_weights(capped_canvas, noised, "uniform", pinned)[pinned] == 0)


def test_self_conditioning_shows_the_logits_at_the_samplers_temperatures():
    """The sampler feeds back its temperature-scaled logits (0.8 down to 0.4), as transformers' generate does; the
    second pass in training must read logits scaled the same way, not the first pass's raw ones."""
    from engine.configs import tiny_config

    torch.manual_seed(0)
    model = DiffusionGemmaForBlockDiffusion(tiny_config(vocab_size=300, canvas_length=16))
    calls, forward = [], model.forward

    def recording(*args, **kwargs):
        out = forward(*args, **kwargs)
        calls.append((kwargs.get("self_conditioning_logits"), out.logits.detach()))
        return out

    model.forward = recording
    prompts, clean = torch.randint(10, 300, (4, 12)), torch.randint(10, 300, (4, 16))
    train.diffusion_loss(model, prompts, clean, noise="uniform", vocab=300, mask_id=None,
                         gen=torch.Generator().manual_seed(0), noise_level=0.5)
    (_, first), (fed, _) = calls
    for row in range(4):
        scale = float((fed[row] * first[row]).sum() / (first[row] * first[row]).sum())
        assert 1 / 0.8 - 1e-4 <= scale <= 1 / 0.4 + 1e-4
        assert torch.allclose(fed[row], first[row] * scale, atol=1e-4)


def test_ar_twin_trains_on_the_same_examples_and_fills_through_the_ar_engine(prepared):
    tmp, _ = prepared
    run = tmp / "ar"
    train_ar.main(["--config", "tiny", "--shards", str(tmp / "shards"), "--tokenizer", str(tmp / "tok"), "--run",
                   str(run), "--total-steps", "20", "--eval-every", "20", *SMALL])
    final = json.loads((run / "metrics.json").read_text())
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert final["steps"] == 20 and final["val_ce_middle"] < log[0]["val_ce_middle"] - 0.5
    # the diffusion run's draw of canvas lengths (16 or 32 here), so its data budget: it saw 64 + 32 every step
    assert 20 * 8 * (64 + 16) < final["data_tokens_seen"] < 20 * 8 * (64 + 32) and final["canvas_lengths"] == [16, 32]
    assert (final["data_tokens_seen"] - 20 * 8 * 64) % (8 * 16) == 0

    from engine.ar_engine import AREngine
    from engine.types import Candidates, EngineConfig

    engine = AREngine(EngineConfig(model=str(run / "model"), threads=2))
    assert engine.max_prompt_tokens == 64
    result = engine.fill("def add(a, b):\n    return ", "\n", max_new_tokens=12, lengths=[8, 16])
    assert isinstance(result, Candidates) and result.layout == "psm-sentinels"
    # one row, as long as the longest length asked for, capped by max_new_tokens
    assert 0 < result.best.steps <= 13 and result.best.length <= 12 and result.timings["total_ms"] > 0
    assert result.best.ended or result.best.length == 12

    from training import heldout_eval  # the quick held-out check the GPU session chooses variants by

    examples = heldout_eval.heldout_lines(engine.tokenizer, [tmp / "shards"], count=2, context=64,
                                          tokenizer_dir=run / "model")
    assert all(len(engine.tokenizer(ex["middle"])["input_ids"]) <= heldout_eval.LONGEST_LINE for ex in examples)
    with pytest.raises(SystemExit, match="rebuild the shards"):   # the shipped model's tokenizer is another
        heldout_eval.heldout_lines(engine.tokenizer, [tmp / "shards"], count=2, context=64,
                                   tokenizer_dir=DEFAULT_MODEL_DIR)
    so_far = []
    report = heldout_eval.evaluate(engine, examples, progress=so_far.append)
    assert report["examples"] == 2 and 0.0 <= report["exact_match"] <= 1.0 and report["mean_latency_ms"] > 0
    # a report after every fill, so that a run cut at the session's deadline keeps what it scored
    assert [(r["examples"], r["complete"], len(r["hits"])) for r in so_far] == [(1, False, 1), (2, True, 2)]
    assert report["exact_match"] == sum(report["hits"]) / 2


def test_the_gpu_session_chooses_by_the_held_out_fills_every_variant_scored():
    """Fills cut at the deadline (session 48: all of them) chose by validation loss, which misled; the variants
    are now compared over the first fills each of them scored."""
    from training.gpu_session import MIN_HELDOUT_FILLS as N, best_by_heldout

    # uniform's two matches come after the fills masked finished: over those, masked has two, uniform one
    assert best_by_heldout({"uniform": {"hits": [0] * N + [1, 1, 1]},
                            "masked": {"hits": [1, 1] + [0] * (N - 1)}}) == ("masked", N + 1)
    assert best_by_heldout({"masked": {"hits": [1] + [0] * N}, "uniform": {"hits": [0, 1] + [0] * N}}) == ("uniform",
                                                                                                      N + 1)   # tie
    # Not enough to overrule the validation loss: a variant with no result, too few fills in common, no match at all
    assert best_by_heldout({"uniform": {"error": "cut"}, "masked": {"hits": [1] * N}}) == (None, 0)
    assert best_by_heldout({"uniform": {"hits": [0]}, "masked": {"hits": [1] * 99}}) == (None, 1)
    assert best_by_heldout({"uniform": {"hits": [0] * N}, "masked": {"hits": [0] * N}}) == (None, N)


def test_psm_and_spm_layouts_carry_the_same_example():
    from training.fim import Example, diffusion_layout, psm_layout

    ex = Example(prefix=[10, 11, 12], middle=[20, 21], suffix=[30], kind="span")
    prompt, canvas = diffusion_layout(ex, (3, 4, 5), canvas=6)
    assert prompt == [4, 30, 3, 10, 11, 12, 5] and canvas == [20, 21, EOS_ID, PAD_ID, PAD_ID, PAD_ID]
    ids, weights = psm_layout(ex, (3, 4, 5), total=12)
    assert ids == [3, 10, 11, 12, 4, 30, 5, 20, 21, EOS_ID, PAD_ID, PAD_ID]
    assert weights == [1.0] * 9 + [0.0] * 2


def test_fim_sampler_mixes_all_kinds_and_keeps_shapes_fixed():
    from training.fim import FimSampler

    rng = np.random.default_rng(0)
    stream = rng.integers(20, 200, size=20_000)
    stream[::9] = 7  # "newline" tokens
    sampler = FimSampler(stream, np.array([7]), context=48, canvas=16, seed=0)
    kinds, suffixes = set(), []
    for _ in range(300):
        ex = sampler.example()
        kinds.add(ex.kind)
        suffixes.append(len(ex.suffix))
        assert len(ex.prefix) + len(ex.suffix) + 3 == 48 and len(ex.middle) <= 15
        if ex.kind == "continuation":
            assert ex.suffix == [] and len(ex.middle) == 15
        if ex.kind in ("line", "lines") and ex.middle:
            assert ex.middle[-1] == 7  # whole lines end after a newline token
    assert kinds == {"line", "lines", "span", "continuation"}
    # suffixes as long as the engine keeps at inference (a third of the prompt less its 3 sentinels), often whole
    from engine.prompt import trim_context
    cap = len(trim_context([1] * 100, [2] * 100, 48 - 3)[1])
    assert max(suffixes) == cap and suffixes.count(cap) > 100


def test_a_shorter_canvas_gets_examples_cut_for_it():
    """The engine trims the canvas to the fill (16 tokens for a short one); a model shown only its longest canvas
    did worse than unigram on a 16-token one (bench/RESULTS.md), so batches come in each length, cut to fit."""
    from training.fim import FimSampler, diffusion_batch

    rng = np.random.default_rng(0)
    stream = rng.integers(20, 200, size=20_000)
    stream[::9] = 7
    sampler = FimSampler(stream, np.array([7]), context=48, canvas=64, seed=0)
    prompts, clean = diffusion_batch(sampler, (3, 4, 5), 200, canvas=16)
    assert prompts.shape == (200, 48) and clean.shape == (200, 16)
    assert (clean == EOS_ID).any(1).all()                   # every middle and its <eos> fit the 16 tokens
    ends = (clean == EOS_ID).int().argmax(1)
    assert (ends < 15).float().mean() > 0.5   # most end inside the canvas
    assert (ends == 15).any()                 # continuations fill it, <eos> last, read as "go on past it"
    assert diffusion_batch(sampler, (3, 4, 5), 4)[1].shape == (4, 64)   # the sampler's own canvas by default


def test_some_examples_end_at_a_files_end_with_no_suffix():
    """At the bottom of a file the suffix is empty; training showed an empty suffix only with a continuation,
    whose middle runs to the canvas end, so the model never learnt to end a middle there."""
    from training.fim import FimSampler

    rng = np.random.default_rng(1)
    stream = rng.integers(20, 200, size=40_000)
    stream[::9] = 7                 # "newline" tokens
    stream[::997] = BOS_ID          # files of about 1,000 tokens
    stream[20_000:20_100:5] = BOS_ID   # and some of 5 tokens, shorter than a span
    sampler = FimSampler(stream, np.array([7]), context=48, canvas=16, seed=0)
    at_file_end = []
    for _ in range(1000):
        ex = sampler.example()
        if ex.kind != "continuation" and not ex.suffix:
            at_file_end.append(ex)
            # the whole prefix, or less in a file shorter than it (from the file's start)
            assert len(ex.prefix) <= 45 and 0 < len(ex.middle) <= 15 and BOS_ID not in ex.middle + ex.prefix
            start = len(ex.prefix)
            end = next(i for i in range(start + len(ex.middle), len(stream))
                       if stream[i - len(ex.middle):i].tolist() == ex.middle
                       and stream[i - len(ex.middle) - start:i - len(ex.middle)].tolist() == ex.prefix)
            assert stream[end] == BOS_ID    # the middle runs to the file's end
            assert len(ex.prefix) == 45 or stream[end - len(ex.middle) - start - 1] == BOS_ID
    assert 40 < len(at_file_end) < 130   # about 10% of the 85% that are not continuations
    assert {ex.kind for ex in at_file_end} == {"line", "lines", "span"}


def character_cut_examples(count: int, seed: int = 0, canvas: int = 64, edit=lambda text: text):
    """Examples a sampler with the shipped tokenizer cuts from real source (the frozen copies of project files,
    each changed by `edit`), and the stream's text with that tokenizer's decode."""
    from transformers import AutoTokenizer

    from training.fim import FimSampler, newline_token_ids

    tokenizer = AutoTokenizer.from_pretrained(DEFAULT_MODEL_DIR)
    ids = []
    for path in sorted((Path(__file__).parent / "data" / "properties").glob("*")):
        ids += [BOS_ID] + encode_text(tokenizer, edit(path.read_text()))
    stream = np.array(ids, dtype=np.int64)
    sampler = FimSampler(stream, newline_token_ids(tokenizer), 256, canvas, seed, tokenizer=tokenizer)
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return tokenizer, decode, decode(stream.tolist()), [sampler.example() for _ in range(count)]


def test_character_cuts_keep_the_text_and_tokenize_each_piece_as_the_engine_does():
    tokenizer, decode, text, examples = character_cut_examples(800)
    # those near a file's start or crossing one's end keep the token cuts (heal_cuts says when)
    assert sum(ex.at_characters for ex in examples) > 0.9 * len(examples)
    for ex in examples:
        assert len(ex.prefix) + len(ex.suffix) + 3 <= 256 and len(ex.middle) <= 63
        if ex.kind == "continuation":
            assert ex.suffix == [] and len(ex.middle) == 63
        prefix, middle, suffix = decode(ex.prefix), decode(ex.middle), decode(ex.suffix)
        # nothing lost or added between the pieces (their far ends may cut a character's bytes, as in the engine)
        assert prefix.lstrip("\ufffd") + middle + suffix.rstrip("\ufffd") in text
        if len(ex.prefix) + len(ex.suffix) + 3 < 256:   # a shorter prompt: the prefix from its file's start
            assert "<bos>" + prefix + middle in text
        if not ex.at_characters:
            continue
        # the middle is its own text's tokens (a continuation's last may be a cut word's first piece)
        kept = len(ex.middle) - (ex.kind == "continuation")
        assert ex.middle[:kept] == encode_text(tokenizer, middle)[:kept]
        if BOS_ID not in ex.prefix[-16:]:
            assert ex.prefix[-8:] == encode_text(tokenizer, prefix)[-8:]   # ends as the engine's prompt would
        if BOS_ID not in ex.suffix[:16] and len(ex.suffix) > 2:
            # its last two tokens may encode otherwise once the text after them is cut (a cut word's first piece,
            # "\n" "\n" becoming "\n\n"), as in the engine
            head = min(8, len(ex.suffix) - 2)
            assert ex.suffix[:head] == encode_text(tokenizer, suffix)[:head]


def test_line_examples_start_where_an_editor_cursor_does():
    """A cut between tokens starts a line's middle after the newline-and-indentation token, which holds all but one
    of the indentation's spaces: the editor's prefix after auto-indent (the full indentation) was never shown."""
    _, decode, _, examples = character_cut_examples(800, seed=1)
    lines = [(decode(ex.prefix), decode(ex.middle), decode(ex.suffix)) for ex in examples
             if ex.kind in ("line", "lines")]
    indented = [(p, m) for p, m, _ in lines if p.rsplit("\n", 1)[-1] and not p.rsplit("\n", 1)[-1].strip()]
    after_indentation = [m for p, m in indented if m and not m[0].isspace()]
    at_column_0 = [m for p, m, _ in lines if p.endswith("\n") and m[:1] in (" ", "\t")]
    assert len(after_indentation) > 0.3 * len(lines) and len(after_indentation) > 0.85 * len(indented)
    assert len(at_column_0) > 0.1 * len(lines)
    before_break = [m for _, m, s in lines if s.startswith("\n") and not m.endswith("\n")]
    whole_lines = [m for _, m, s in lines if m.endswith("\n") and s[:1] != "\n"]
    assert len(before_break) > 0.3 * len(lines) and len(whole_lines) > 0.2 * len(lines)


def test_line_middles_are_never_blank_and_a_files_last_line_is_one_without_its_line_break():
    """A file without a final line break lost its last line at the file's end (the middle came out empty, the line
    in the suffix), and a blank line between definitions made an empty middle: both taught "write nothing"."""
    _, decode, _, examples = character_cut_examples(1500, seed=3, edit=lambda text: text.rstrip("\n"))
    lines = [ex for ex in examples if ex.kind in ("line", "lines") and ex.at_characters]
    assert lines and all(decode(ex.middle).strip() for ex in lines)
    at_file_end = [ex for ex in lines if not ex.suffix]
    assert at_file_end   # the last line, or lines, with nothing after them


def test_a_crlf_line_middle_does_not_end_between_its_cr_and_lf():
    """The editor's cursor at a CRLF line's end is before the \\r: a middle ending in a lone \\r taught a stray CR."""
    _, decode, _, examples = character_cut_examples(1000, seed=4, edit=lambda text: text.replace("\n", "\r\n"))
    cut = [(decode(ex.middle), decode(ex.suffix)) for ex in examples if ex.at_characters and ex.kind != "continuation"]
    assert not [m for m, _ in cut if m.endswith("\r")]
    assert [s for _, s in cut if s.startswith("\r\n")]   # some end before the break, as an editor's cursor does


def test_span_examples_cut_mid_word_and_after_a_space():
    """While typing, the cursor sits inside a word ("ret|") or after a space ("x = |"); between tokens a space
    always starts the next token, so a prefix ending in a space after code came only from the tokenizer's quirks."""
    _, decode, _, examples = character_cut_examples(800, seed=2)
    spans = [(decode(ex.prefix), decode(ex.middle)) for ex in examples if ex.kind == "span"]
    after_space = [p for p, _ in spans if p.endswith(" ") and p[-2:-1] not in (" ", "\n", "\t", "")]
    mid_word = [p for p, m in spans if p[-1:].isalpha() and m[:1].isalpha()]
    assert len(after_space) > 0.02 * len(spans) and len(mid_word) > 0.1 * len(spans)


def test_gpu_config_fits_the_40_mb_budget_and_the_ar_twin_matches_its_size(tmp_path):
    from transformers import LlamaForCausalLM

    from training.common import ar_config, gpu_config

    model = DiffusionGemmaForBlockDiffusion(gpu_config(vocab_size=8192, canvas_length=64)).to(torch.bfloat16)
    model.save_pretrained(tmp_path, max_shard_size="15MB")
    weights = sum(f.stat().st_size for f in tmp_path.glob("*.safetensors"))
    tokenizer = (ROOT / "training" / "tokenizer" / "tokenizer.json").stat().st_size
    assert weights + tokenizer < 40e6
    assert all(f.stat().st_size <= 16 * 1024 * 1024 for f in tmp_path.glob("*.safetensors"))
    diffusion = sum(p.numel() for p in model.parameters())
    twin = sum(p.numel() for p in LlamaForCausalLM(ar_config("gpu", 8192)).parameters())
    assert abs(twin - diffusion) / diffusion < 0.05


def test_gpu_session_packs_a_model_into_parts_under_16_mib_and_unpacks_it(tmp_path):
    from training import gpu_session

    model = tmp_path / "runs" / "ar" / "model"
    model.mkdir(parents=True)
    payload = np.random.default_rng(0).bytes(20 * 1024 * 1024)  # two parts
    (model / "model.safetensors").write_bytes(payload)
    (model / "config.json").write_text("{}")
    gpu_session.main(["export", "ar", "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")])
    parts = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in parts] == ["model-ar.tar.000", "model-ar.tar.001"]
    assert all(p.stat().st_size <= 16 * 1024 * 1024 for p in parts)
    gpu_session.main(["unpack", str(tmp_path / "out"), "--dest", str(tmp_path / "back")])
    assert (tmp_path / "back" / "model-ar" / "model.safetensors").read_bytes() == payload
    with pytest.raises(SystemExit, match="no model"):
        gpu_session.main(["export", "masked", "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")])


def test_a_bf16_checkpoint_comes_back_as_fp32_with_exact_step_counts(tmp_path):
    from training.common import load_checkpoint, restore_optimizer, save_checkpoint

    model = torch.nn.Linear(64, 64)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(300):  # past 256: bf16 would round the step count
        model(torch.randn(4, 64)).sum().backward()
        opt.step()
        opt.zero_grad()
    parts = save_checkpoint(tmp_path, {"model": model.state_dict(), "opt": opt.state_dict(), "step": 300},
                            torch.bfloat16)
    assert parts and all(p.stat().st_size <= 16 * 1024 * 1024 for p in parts)
    state = load_checkpoint(tmp_path, torch.device("cpu"))
    assert state["step"] == 300 and state["model"]["weight"].dtype == torch.float32
    assert torch.allclose(state["model"]["weight"], model.weight, atol=1e-2)
    fresh = torch.optim.AdamW(torch.nn.Linear(64, 64).parameters(), lr=1e-3)
    restore_optimizer(fresh, state["opt"])
    moments = fresh.state_dict()["state"][0]
    assert float(moments["step"]) == 300 and moments["exp_avg"].dtype == torch.float32


def test_gpu_session_packs_a_model_only_where_it_still_comes_back_and_swaps_the_chosen_one_in(tmp_path, monkeypatch):
    from training import gpu_session

    monkeypatch.setattr(gpu_session, "PART_BYTES", 1024 * 1024)
    monkeypatch.setattr(gpu_session, "OUT_BYTES", 5 * 1024 * 1024)
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.log").write_text("the runbook tees the stage's output here\n")
    models = {}
    for name in ("uniform", "masked"):
        models[name] = tmp_path / name
        models[name].mkdir()
        (models[name] / "model.safetensors").write_bytes(np.random.default_rng(len(name)).bytes(3 * 1024 * 1024))
    first = gpu_session.pack(models["masked"], "model-masked", out, fit=True)
    assert len(first) == 4  # 3 MiB and the tar headers: four 1 MiB parts
    assert gpu_session.pack(models["uniform"], "model-uniform", out, fit=True) == []  # 6 MiB would not come back
    assert not gpu_session.parts_of("model-uniform", out)
    gpu_session.pack(models["uniform"], "model-uniform", out, fit=True, replaces=first)
    assert [p.name for p in sorted(out.iterdir())] == ["model-uniform.tar.000", "model-uniform.tar.001",
                                                       "model-uniform.tar.002", "model-uniform.tar.003", "train.log"]
    gpu_session.main(["unpack", str(out), "--dest", str(tmp_path / "back")])
    assert (tmp_path / "back" / "model-uniform" / "model.safetensors").read_bytes() == \
        (models["uniform"] / "model.safetensors").read_bytes()
    monkeypatch.setattr(gpu_session, "OUT_FILES", 4)  # four parts and train.log: one file too many
    assert gpu_session.pack(models["masked"], "model-masked", out, fit=True) == []


def test_the_ar_twin_draws_the_diffusion_runs_examples(prepared):
    """Equal budget means the same examples: the twin took every example at the whole canvas while the diffusion
    trainer drew a canvas length per step, so from the first draw on they saw different (and more) tokens."""
    from training.fim import FimSampler, diffusion_batch, fim_token_ids, newline_token_ids, psm_batch
    from training.shards import load_many

    tmp, _ = prepared
    tokenizer = AutoTokenizer.from_pretrained(tmp / "tok")
    stream, _, _ = load_many([tmp / "shards"], tmp / "tok")
    fim_ids, newlines = fim_token_ids(tokenizer), newline_token_ids(tokenizer)
    diffusion, twin = (FimSampler(stream, newlines, 64, 32, 0, tokenizer=tokenizer) for _ in range(2))
    for _ in range(6):   # each as its trainer's loop draws a step
        prompts, canvases = diffusion_batch(diffusion, fim_ids, 4, diffusion.rng.choice([16, 32]))
        ids, _ = psm_batch(twin, fim_ids, 4, twin.rng.choice([16, 32]))
        assert ids.shape[1] == 64 + canvases.shape[1]
        for prompt, canvas, row in zip(prompts.tolist(), canvases.tolist(), ids.tolist()):
            prefix_start = prompt.index(fim_ids[0])
            suffix = prompt[prompt.index(fim_ids[1]) + 1:prefix_start]
            prefix, middle = prompt[prefix_start + 1:-1], canvas[:canvas.index(EOS_ID) if EOS_ID in canvas else None]
            assert row[:row.index(fim_ids[2]) + 1 + len(middle)] == [fim_ids[0], *prefix, fim_ids[1], *suffix,
                                                                       fim_ids[2], *middle]


def test_a_run_resumed_with_a_longer_schedule_goes_on_from_its_learning_rate(prepared):
    """The cosine read at the new progress jumped back up (5x at a finished run's end); the rate now goes on from
    where it was, down to the floor over the steps added."""
    from training.common import learning_rate

    assert learning_rate(1.0, 50, 10, 0.5, restart=(0.5, 0.2)) == pytest.approx(0.2)
    assert learning_rate(1.0, 99, 10, 1.0, restart=(0.5, 0.2)) == pytest.approx(0.1)
    assert learning_rate(1.0, 20, 10, 0.2, restart=(0.5, 0.2)) == learning_rate(1.0, 20, 10, 0.2)
    # resumed in the warm-up with a longer schedule: the warm-up goes on (the rate stayed at its ramp's value)
    from argparse import Namespace

    from training.common import check_resume_flags, schedule_restart
    args = Namespace(total_steps=2000, total_minutes=None, lr=1e-3, warmup=100)
    assert schedule_restart({}, {"total_steps": 1000, "total_minutes": None}, args, 50, 10.0) is None
    assert schedule_restart({}, {"total_steps": 1000, "total_minutes": None}, args, 500, 10.0) is not None
    with pytest.raises(SystemExit, match=r"--canvas-lengths 64 \(now 16 32 64\)"):   # as typed, not [64]
        check_resume_flags({"canvas_lengths": [64]}, {"canvas_lengths": [16, 32, 64]})
    # another tokenizer: its ids are not the ones the weights learnt (a resume took it silently, and shipped it)
    with pytest.raises(SystemExit, match=r"the tokenizer 0123 \(now 4567\)"):
        check_resume_flags({"tokenizer_sha1": "0123"}, {"tokenizer_sha1": "4567"})

    tmp, _ = prepared
    run = tmp / "ar-stretched"
    common = ["--config", "tiny", "--shards", str(tmp / "shards"), "--tokenizer", str(tmp / "tok"), "--run",
              str(run), "--eval-every", "100", *SMALL]
    train_ar.main([*common, "--total-steps", "6"])
    train_ar.main([*common, "--total-steps", "12", "--chunk-steps", "3"])
    train_ar.main([*common, "--total-steps", "12"])   # a third chunk keeps the second's schedule
    rates = [json.loads(line)["lr"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(rates) == 12 and all(later < earlier for earlier, later in zip(rates[:6], rates[1:6]))
    from training.common import load_checkpoint
    from training.shards import tokenizer_digest
    assert load_checkpoint(run, torch.device("cpu"))["args"]["tokenizer_sha1"] == tokenizer_digest(tmp / "tok")
    # the first run had reached its floor: the steps added go on there (the cosine at 7/12 gave 5x)
    assert rates[6:] == pytest.approx([5e-3 * 0.1] * 6)

    run = tmp / "ar-stretched-midway"   # stretched halfway through: on from the rate it had, down to the floor
    common[common.index("--run") + 1] = str(run)
    train_ar.main([*common, "--total-steps", "6", "--chunk-steps", "3"])
    train_ar.main([*common, "--total-steps", "12"])
    rates = [json.loads(line)["lr"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(rates) == 12 and rates[3] == pytest.approx(learning_rate(5e-3, 3, 1, 3 / 6))
    assert all(later < earlier for earlier, later in zip(rates, rates[1:])) and rates[-1] > 5e-3 * 0.1
