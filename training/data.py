"""Collect permissively licensed Python source from the local wheel mirrors into a training corpus.

Every wheel's own METADATA decides whether it is used (MIT, BSD, Apache, PSF, ISC, Unlicense, zlib, MPL is NOT
included because it is file-level copyleft). Distributions named in ../shared/holdout.txt are excluded wherever
they appear, including copies vendored inside other wheels. The manifest lists every distribution used, its
version, licence and byte count, and every distribution skipped and why.

    python -m training.data --out training/data --max-mb 40 --per-dist-mb 1
"""
from __future__ import annotations

import argparse
import email.parser
import hashlib
import json
import random
import re
import zipfile
from pathlib import Path

MIRRORS = [Path("/opt/pypi/files"), Path("/opt/pypi-more/files")]
HOLDOUT_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "holdout.txt"
PERMISSIVE = re.compile(r"\b(MIT|BSD|Apache|PSF|Python Software Foundation|ISC|Unlicense|zlib|0BSD|CC0)\b", re.I)
COPYLEFT = re.compile(r"\b(GPL|LGPL|AGPL|MPL|Mozilla|EUPL|CDDL|proprietary|commercial)\b", re.I)
MAX_FILE_BYTES = 200_000  # generated tables and vendored blobs teach nothing about code


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_holdout(path: Path = HOLDOUT_FILE) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(normalize(line))
    return names


def wheel_license(zf: zipfile.ZipFile) -> tuple[str, str]:
    """(distribution name, licence text) from the wheel's METADATA."""
    meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
    meta = email.parser.Parser().parsestr(zf.read(meta_name).decode("utf-8", "replace"), headersonly=True)
    parts = [meta.get("License-Expression", ""), (meta.get("License", "") or "")[:200]]
    parts += [c for c in meta.get_all("Classifier", []) if c.startswith("License ::")]
    return meta.get("Name", ""), " | ".join(p for p in parts if p)


def is_permissive(licence: str) -> bool:
    return bool(PERMISSIVE.search(licence)) and not COPYLEFT.search(licence)


def vendored_holdout(member: str, holdout: set[str]) -> bool:
    """True for a file inside a vendored copy of a held-out distribution (e.g. pip/_vendor/rich/...)."""
    dirs = [normalize(p) for p in member.split("/")[:-1]]
    return any(d in holdout or d.replace("-", "_") in holdout for d in dirs)


def collect(out: Path, max_mb: float, per_dist_mb: float = 1.0, seed: int = 0) -> dict:
    holdout = read_holdout()
    wheels = sorted(w for m in MIRRORS if m.is_dir() for w in m.glob("*.whl"))
    random.Random(seed).shuffle(wheels)
    out.mkdir(parents=True, exist_ok=True)
    used, skipped, seen_dists, seen_hashes = [], [], set(), set()
    total = 0
    with open(out / "corpus.jsonl", "w") as sink:
        for wheel in wheels:
            if total >= max_mb * 1e6:
                break
            try:
                zf = zipfile.ZipFile(wheel)
                name, licence = wheel_license(zf)
            except Exception as exc:  # a broken wheel is skipped, not fatal
                skipped.append({"wheel": wheel.name, "why": f"unreadable: {exc}"})
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
            for member in zf.namelist():
                if not member.endswith(".py") or vendored_holdout(member, holdout):
                    continue
                data = zf.read(member)
                if not data.strip() or len(data) > MAX_FILE_BYTES:
                    continue
                if n_bytes >= per_dist_mb * 1e6:  # keep the corpus varied: no single project dominates
                    break
                digest = hashlib.sha1(data).hexdigest()
                if digest in seen_hashes:
                    continue
                seen_hashes.add(digest)
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                sink.write(json.dumps({"dist": dist, "path": member, "text": text}) + "\n")
                n_files += 1
                n_bytes += len(data)
            if n_files:
                used.append({"dist": dist, "wheel": wheel.name, "licence": licence[:200], "files": n_files,
                             "bytes": n_bytes})
                total += n_bytes
    manifest = {
        "source": [str(m) for m in MIRRORS],
        "holdout_excluded": sorted(holdout),
        "holdout_rule": "excluded by distribution name and as vendored copies inside other wheels",
        "licence_rule": "METADATA licence must match MIT/BSD/Apache/PSF/ISC/Unlicense/zlib/CC0 and no copyleft term",
        "total_bytes": total,
        "used": used,
        "skipped": skipped,
    }
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("training/data"))
    parser.add_argument("--max-mb", type=float, default=60)
    parser.add_argument("--per-dist-mb", type=float, default=1.0)
    parser.add_argument("--manifest", type=Path, default=Path("training/data_manifest.json"))
    args = parser.parse_args()
    manifest = collect(args.out, args.max_mb, args.per_dist_mb)
    args.manifest.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(manifest['used'])} distributions, {manifest['total_bytes'] / 1e6:.1f} MB, "
          f"{len(manifest['skipped'])} skipped -> {args.out}/corpus.jsonl")


if __name__ == "__main__":
    main()
