"""Average recipes over several splits, and ensembles of them, from bench/recipes.py runs.

    python bench/recipes.py --jsonl runs.jsonl --probs -r "a: seed=42" -r "b: seed=42 arch=..."
    python bench/ensemble.py runs.jsonl -e a+b        # a, b and their averaged softmax

One run on one split is a single draw: its accuracy moves by a point or two with the seed
and with which objects land in validation. This script takes runs made with ``--probs``,
matches them by split (the recipe's seed, ``valid_pct`` and ``group_block``), and prints
each recipe's and each ensemble's accuracy, macro and trash recall per split and on average
over the splits where all of its members ran, plain and with a mirrored copy averaged in.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from recipes import summary  # the figures every recipe run reports (bench/ is on sys.path)

Split = tuple[int, float, int]


def load_runs(paths: list[Path]) -> dict[Split, dict[str, dict]]:
    """Runs by split, then by recipe name; a name seen twice on one split keeps the first."""
    runs: dict[Split, dict[str, dict]] = defaultdict(dict)
    for path in paths:
        for line in path.read_text().splitlines():
            run = json.loads(line)
            if "probs" not in run:
                raise SystemExit(f"{path}: a run without probabilities; make it with --probs")
            r = run["recipe"]
            runs[(r["seed"], r["valid_pct"], r["group_block"])].setdefault(run["name"], run)
    return runs


def scores(probs: np.ndarray, targets: list[int], labels: list[str]) -> tuple[float, float, float]:
    s = summary(probs, np.asarray(targets), labels)
    return s["accuracy"], s["macro_recall"], s["recall"].get("trash", np.nan)


def ensemble(members: list[dict], key: str) -> np.ndarray:
    if any(m["targets"] != members[0]["targets"] for m in members):
        raise SystemExit("members of an ensemble saw different validation images")
    return np.mean([np.asarray(m[key]) for m in members], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jsonl", type=Path, nargs="+", help="files written by bench/recipes.py --probs")
    parser.add_argument("-e", "--ensemble", action="append", default=[], metavar="A+B",
                        help="recipe names whose softmax outputs are averaged")
    args = parser.parse_args()
    runs = load_runs(args.jsonl)
    names = sorted({name for by_name in runs.values() for name in by_name})
    print(f"{'recipe':<20}{'splits':>7}{'acc':>7}{'macro':>7}{'trash':>7}{'acc+flip':>10}"
          f"{'trash+flip':>11}   accuracy per split")
    for combo in names + args.ensemble:
        members = combo.split("+")
        rows = []
        for split in sorted(runs):
            if all(m in runs[split] for m in members):
                chosen = [runs[split][m] for m in members]
                labels, targets = chosen[0]["labels"], chosen[0]["targets"]
                rows.append((split[0], scores(ensemble(chosen, "probs"), targets, labels),
                             scores(ensemble(chosen, "probs_flip_tta"), targets, labels)))
        if not rows:
            print(f"{combo:<20}{0:>7}  (no split where all of its members ran)")
            continue
        plain = np.nanmean([r[1] for r in rows], axis=0)
        flip = np.nanmean([r[2] for r in rows], axis=0)
        per_split = " ".join(f"{seed}:{p[0]:.3f}" for seed, p, _ in rows)
        print(f"{combo:<20}{len(rows):>7}{plain[0]:>7.3f}{plain[1]:>7.3f}{plain[2]:>7.3f}"
              f"{flip[0]:>10.3f}{flip[2]:>11.3f}   {per_split}")


if __name__ == "__main__":
    main()
