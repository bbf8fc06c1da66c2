"""Tokenize corpus.jsonl once into flat token shards that travel to the GPU machine (numpy uint16, <= 16 MiB each).

Files are joined into one stream with <bos> at each file start. About 2% of files (by a hash of distribution and
path, the same rule everywhere) form the held-out stream. The manifest gains a token count per distribution.

    python -m training.shards --corpus training/data/corpus.jsonl --tokenizer training/tokenizer \
        --out training/data/shards --max-mb 56

The output folder holds train-000.npy ..., val.npy and meta.json (vocabulary, tokenizer hash, token counts, and the
held-out rule's hash: files of held-out distributions are dropped again here, and shards built under another rule are
refused when loaded).
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from engine.configs import BOS_ID
from training.data import HoldoutGate, holdout_digest, read_holdout

SHARD_BYTES = 16 * 1024 * 1024 - 4096  # one file back from the GPU machine may hold 16 MiB; .npy adds a header


def held_out(dist: str, path: str) -> bool:
    return int(hashlib.sha1((dist + path).encode()).hexdigest(), 16) % 50 == 0


def tokenizer_digest(tokenizer_dir: Path) -> str:
    return hashlib.sha1((Path(tokenizer_dir) / "tokenizer.json").read_bytes()).hexdigest()[:16]


def write_shards(corpus: Path, tokenizer_dir: Path, out: Path, max_mb: float = 56.0,
                 manifest_path: Path | None = None) -> dict:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    vocab = len(tokenizer)
    dtype = np.uint16 if vocab <= 65535 else np.uint32
    budget = int(max_mb * 1e6) // np.dtype(dtype).itemsize  # train + val tokens, so the folder fits one call
    gate = HoldoutGate()
    records, held = [], 0
    for line in open(corpus):
        record = json.loads(line)
        if gate.refuses(record):
            held += 1
        else:
            records.append(record)
    train, val, per_dist = [], [], {}
    total = used_files = 0
    for start in range(0, len(records), 512):
        chunk = records[start:start + 512]
        # split_special_tokens: source that spells "<eos>" is text, not the end marker
        encoded = tokenizer([r["text"] for r in chunk], add_special_tokens=False,
                            split_special_tokens=True)["input_ids"]
        for rec, ids in zip(chunk, encoded):
            if total + len(ids) + 1 > budget:
                continue   # too long for what is left: a shorter file further on may still fit
            (val if held_out(rec["dist"], rec["path"]) else train).extend([BOS_ID, *ids])
            per_dist[rec["dist"]] = per_dist.get(rec["dist"], 0) + len(ids) + 1
            total += len(ids) + 1
            used_files += 1
        if total + 1 >= budget:
            break
    if len(val) < len(train) // 100:  # a tiny corpus may hash no file into the held-out share: keep its tail
        cut = len(train) - max(len(train) // 10, 1)
        train, val = train[:cut], train[cut:]
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.npy"):
        old.unlink()
    per_shard = SHARD_BYTES // np.dtype(dtype).itemsize
    train_arr = np.asarray(train, dtype=dtype)
    names = []
    for i, begin in enumerate(range(0, len(train_arr), per_shard)):
        names.append(f"train-{i:03d}.npy")
        np.save(out / names[-1], train_arr[begin:begin + per_shard])
    np.save(out / "val.npy", np.asarray(val[:per_shard], dtype=dtype))
    meta = {"vocab_size": vocab, "dtype": np.dtype(dtype).name, "tokenizer_sha1": tokenizer_digest(tokenizer_dir),
            "train_tokens": len(train_arr), "val_tokens": min(len(val), per_shard), "train_shards": names,
            "files": used_files, "corpus_files": len(records) + held, "corpus": str(corpus),
            "holdout_sha1": gate.digest, "holdout_files_dropped": held}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    if manifest_path is not None and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        for entry in manifest.get("used", []):
            entry["tokens"] = per_dist.get(entry["dist"], 0)
        manifest["tokenizer"] = {"path": str(tokenizer_dir), "vocab_size": vocab, "sha1": meta["tokenizer_sha1"]}
        manifest["total_tokens"] = total
        manifest["train_tokens"], manifest["val_tokens"] = meta["train_tokens"], meta["val_tokens"]
        manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return meta


def load_shards(folder: Path, tokenizer_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(train stream, held-out stream, meta), as int64-safe numpy arrays. Refuses shards of another tokenizer."""
    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text())
    if tokenizer_dir is not None and (Path(tokenizer_dir) / "tokenizer.json").is_file():
        digest = tokenizer_digest(Path(tokenizer_dir))
        if digest != meta["tokenizer_sha1"]:
            raise SystemExit(f"{folder} was tokenized with tokenizer {meta['tokenizer_sha1']}, "
                             f"but {tokenizer_dir} is {digest}: rebuild the shards (python -m training.shards)")
    holdout = holdout_digest(read_holdout())
    if meta.get("holdout_sha1") != holdout:
        raise SystemExit(f"{folder} was built under another held-out rule "
                         f"({meta.get('holdout_sha1', 'none recorded')}, now {holdout}): it may hold code kept for "
                         f"evaluation; rebuild the shards (python -m training.shards)")
    train = np.concatenate([np.load(folder / name) for name in meta["train_shards"]])
    return train, np.load(folder / "val.npy"), meta


def load_many(folders: list[Path], tokenizer_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Several shard folders (e.g. the carried one and one built on the GPU machine) as one train and one held-out
    stream. All must come from the same tokenizer."""
    loaded = [load_shards(folder, tokenizer_dir) for folder in folders]
    digests = {meta["tokenizer_sha1"] for _, _, meta in loaded}
    if len(digests) > 1:
        raise SystemExit(f"shard folders {folders} come from different tokenizers {sorted(digests)}")
    meta = dict(loaded[0][2], folders=[str(f) for f in folders])
    if len(loaded) == 1:
        return loaded[0][0], loaded[0][1], meta
    train = np.concatenate([t for t, _, _ in loaded])
    val = np.concatenate([v for _, v, _ in loaded])
    meta.update(train_tokens=len(train), val_tokens=len(val))
    return train, val, meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("training/data/corpus.jsonl"))
    parser.add_argument("--tokenizer", type=Path, default=Path("training/tokenizer"))
    parser.add_argument("--out", type=Path, default=Path("training/data/shards"))
    parser.add_argument("--max-mb", type=float, default=56, help="cap on the shards' total size")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="add per-distribution token counts to this manifest (training/data_manifest.json)")
    args = parser.parse_args()
    meta = write_shards(args.corpus, args.tokenizer, args.out, args.max_mb, args.manifest)
    print(f"{meta['train_tokens']:,} train + {meta['val_tokens']:,} held-out tokens in "
          f"{len(meta['train_shards'])} shard(s) -> {args.out}")


if __name__ == "__main__":
    main()
