"""How well the parse check (infill/choose.py) tells broken fills from right ones, without a model.

Each name or number of a source file that parses cleanly is cut out (a hole) and filled back through
`parse_check`, as the server checks a candidate:
- right: the removed text itself; must be accepted;
- right, typo nearby: the same, with one character deleted 1-200 characters away (a document being edited);
- line end: the rest of the hole's line is cut as well and the whole rest is the fill (the user paused
  mid-line); must be accepted;
- line end, next line unfinished: the same with the next line cut in half (the user went up a line to write
  what the half-written line below needs); must be accepted;
- partial: only up to the next name or number of that rest (an unfinished line, which may stay broken);
- broken: six fills (`x &&`, `x +`, `(x`, `x ==`, `x y`, `x,`), each counted only where it leaves the file with
  a parse error; should be refused.

    python -m bench.parse_check_holes --json

The files: tests/data/languages (Java, JavaScript, Go, C++, C, Rust), two of infill/'s and lsp_server/'s own
modules (Python) and the Neovim plugin's Lua. Seeded, so two commits can be compared on the same holes.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from infill.choose import parse_check
from infill.languages import parse
from infill.spans import errors_around

REPO = Path(__file__).resolve().parent.parent
GRAMMAR_OF_SUFFIX = {".py": "python", ".js": "javascript", ".ts": "typescript", ".go": "go", ".rs": "rust",
                     ".c": "c", ".cpp": "cpp", ".java": "java", ".lua": "lua"}
HOLE_TYPES = {"identifier", "field_identifier", "property_identifier", "integer_literal", "int_literal",
              "decimal_integer_literal", "number_literal", "integer", "number", "true", "false"}
BROKEN_FILLS = ("x &&", "x +", "(x", "x ==", "x y", "x,")
MEASURES = ("right", "right_typo", "line_end", "line_end_next_cut", "partial", "broken")


def default_files() -> list[Path]:
    data = sorted((REPO / "tests" / "data" / "languages").iterdir())
    ours = [REPO / "infill" / "clean.py", REPO / "lsp_server" / "jobs.py"]
    lua = sorted((REPO / "editors" / "nvim" / "lua" / "diffusion_infill").glob("*.lua"))[:3]
    return [path for path in data + ours + lua if path.suffix in GRAMMAR_OF_SUFFIX]


def holes_of(node):
    if node.child_count == 0:
        if node.type in HOLE_TYPES:
            yield node
        return
    for child in node.children:
        yield from holes_of(child)


def accepted(grammar: str, document: str, offset: int, fill: str) -> bool:
    before = errors_around(grammar, document, offset, offset)
    return parse_check(grammar, document, offset, offset, fill, before).added == 0


def measure_file(path: Path, per_file: int, rng: random.Random, counts: dict, examples: dict) -> None:
    grammar = GRAMMAR_OF_SUFFIX[path.suffix]
    source = path.read_text(encoding="utf-8")
    data = source.encode("utf-8")
    tree = parse(grammar, data)
    if tree.root_node.has_error:
        return
    holes = list(holes_of(tree.root_node))
    rng.shuffle(holes)
    tally = counts.setdefault(grammar, {measure: [0, 0] for measure in MEASURES})   # [accepted, tried]

    def count(measure: str, ok: bool, document: str, offset: int, fill: str) -> None:
        tally[measure][0] += ok
        tally[measure][1] += 1
        wrong = ok if measure == "broken" else not ok
        if wrong and len(examples.setdefault(f"{grammar} {measure}", [])) < 3:
            examples[f"{grammar} {measure}"].append(document[max(0, offset - 50):offset] + "<<" + fill + ">>"
                                                    + document[offset:offset + 30])

    for hole in holes[:per_file]:
        start, end = len(data[:hole.start_byte].decode()), len(data[:hole.end_byte].decode())
        right = source[start:end]
        document = source[:start] + source[end:]
        count("right", accepted(grammar, document, start, right), document, start, right)
        for fill in BROKEN_FILLS:
            broken = document[:start] + fill + document[start:]
            if errors_around(grammar, broken, start, start + len(fill)).total:
                count("broken", accepted(grammar, document, start, fill), document, start, fill)
        typo = start + rng.randint(1, 200) * rng.choice((-1, 1))
        if 0 <= typo < len(document) and not document[typo].isspace():
            typoed = document[:typo] + document[typo + 1:]
            at = start if typo > start else start - 1
            count("right_typo", accepted(grammar, typoed, at, right), typoed, at, right)
        line_end = source.find("\n", end)
        if line_end > end and source[end:line_end].strip():
            cut = source[:end] + source[line_end:]
            rest = source[end:line_end]
            count("line_end", accepted(grammar, cut, end, rest), cut, end, rest)
            next_start = source.find("\n", line_end + 1)
            next_line = source[line_end + 1:next_start] if next_start > 0 else ""
            if len(next_line.strip()) >= 4:
                half = line_end + 1 + len(next_line) - len(next_line.lstrip()) + len(next_line.strip()) // 2
                both = source[:end] + source[line_end:half] + source[next_start:]
                if errors_around(grammar, source[:line_end] + source[line_end:half] + source[next_start:],
                                 end, end).total:   # the cut line is broken by itself
                    count("line_end_next_cut", accepted(grammar, both, end, rest), both, end, rest)
            # (offsets in characters on both sides: a hole's bytes after a non-ASCII character are further on)
            following = [h for h in holes if end < len(data[:h.start_byte].decode())
                         and len(data[:h.end_byte].decode()) < line_end]
            if following:
                upto = len(data[:min(following, key=lambda h: h.start_byte).end_byte].decode())
                if upto > end:   # an empty fill is no partial line
                    count("partial", accepted(grammar, cut, end, source[end:upto]), cut, end, source[end:upto])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="source files (default: see the module's docstring)")
    parser.add_argument("--per-file", type=int, default=150, help="holes drawn per file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", action="store_true", help="print a few wrong calls per language")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of the table")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    counts: dict = {}
    examples: dict = {}
    for path in args.files or default_files():
        measure_file(path, args.per_file, rng, counts, examples)
    if args.json:
        print(json.dumps({"counts": counts, "examples": examples if args.examples else {}}))
        return 0
    print(f"{'language':11} " + " ".join(f"{measure + ' accepted':>22}" for measure in MEASURES))
    for grammar, tally in counts.items():
        print(f"{grammar:11} " + " ".join(f"{f'{ok}/{tried}':>22}" for ok, tried in tally.values()))
    if args.examples:
        for key, shown in examples.items():
            for example in shown:
                print(key, repr(example))
    return 0


if __name__ == "__main__":
    sys.exit(main())
