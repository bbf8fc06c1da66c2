"""Train the project's byte-level BPE code tokenizer from the corpus (offline, seconds).

    python -m training.tokenizer --corpus training/data/corpus.jsonl --out training/tokenizer --vocab 8192

The vocabulary size is a choice between 8k and 32k entries (ids must fit the uint16 shards); the special tokens
come first with fixed ids, whatever the size: engine/configs.py relies on <pad>=0, <eos>=1, <bos>=2.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from training.data import HoldoutGate

# Fixed ids: the model config and the sampler rely on pad=0, eos=1, bos=2.
SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<mask>"]


def iter_texts(corpus: Path, max_bytes: int):
    gate = HoldoutGate()  # the held-out rule again: no held-out code shapes the vocabulary either
    used = 0
    with open(corpus) as lines:
        for line in lines:
            record = json.loads(line)
            if gate.refuses(record):
                continue
            text = record["text"]
            used += len(text)
            yield text
            if used >= max_bytes:
                return


def train_tokenizer(corpus: Path, vocab_size: int, max_bytes: int = 15_000_000) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    # Byte-level so any file round-trips; GPT-2 style splitting keeps indentation runs together.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(iter_texts(corpus, max_bytes), trainer=trainer)
    for i, name in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(name) == i, name
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        mask_token="<mask>",
        additional_special_tokens=["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
        clean_up_tokenization_spaces=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=Path("training/data/corpus.jsonl"))
    parser.add_argument("--out", type=Path, default=Path("training/tokenizer"))
    parser.add_argument("--vocab", type=int, default=8192, help="8192 to 32768 (smaller only for smoke tests)")
    parser.add_argument("--max-mb", type=float, default=15, help="train on the first this many MB of the corpus")
    args = parser.parse_args()
    if not len(SPECIAL_TOKENS) + 256 < args.vocab <= 65535:
        parser.error("--vocab must leave room for the 256 bytes and fit uint16 token shards (<= 65535)")
    tokenizer = train_tokenizer(args.corpus, args.vocab, int(args.max_mb * 1e6))
    tokenizer.save_pretrained(args.out)
    sample = "def add(a, b):\n        return a + b\n"
    ids = tokenizer.encode(sample)
    assert tokenizer.decode(ids) == sample
    print(f"vocab {len(tokenizer)}; {len(sample)} chars -> {len(ids)} tokens; saved to {args.out}")


if __name__ == "__main__":
    main()
