"""Compare training recipes on one grouped split, on a GPU when there is one.

    python bench/recipes.py -r "base:" -r "big: size=288 epochs=15" -r "lite1: arch=tf_efficientnet_lite1"
    python bench/recipes.py --seeds 42 43 44 -r "base:"   # one recipe, three training seeds
    python bench/recipes.py --jsonl runs.jsonl --probs -r "a: seed=43" ...  # then bench/ensemble.py

Each ``-r`` is ``NAME: FIELD=VALUE ...`` over the default :class:`wastesort.train.Recipe`.
Every recipe trains through the same code as ``notebooks/train.ipynb`` (data checks, grouped
split, fastai fine-tuning) and is measured on the validation images as fastai sees them,
plain and with a horizontal flip averaged in. Nothing is registered: this is for choosing a
recipe, whose CPU time ``bench/train.py`` then measures. A GPU run is not a CPU run: read
the seconds column only to compare recipes with each other.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from wastesort import data, train
from wastesort.cli import parse_param
from wastesort.config import Settings
from wastesort.evaluate import classification_metrics


def parse_recipe(text: str) -> tuple[str, dict]:
    name, _, fields = text.partition(":")
    return name.strip(), dict(parse_param(f) for f in fields.split())


@torch.no_grad()
def validation_probs(learn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Softmax on the validation batches, plain and averaged with the mirrored image."""
    model = learn.model.eval()
    plain, flipped, targets = [], [], []
    for xb, yb in learn.dls.valid:
        plain.append(torch.softmax(model(xb).float(), 1).cpu())
        flipped.append(torch.softmax(model(xb.flip(3)).float(), 1).cpu())
        targets.append(yb.cpu())
    p, f = torch.cat(plain).numpy(), torch.cat(flipped).numpy()
    return p, (p + f) / 2, torch.cat(targets).numpy()


def summary(probs: np.ndarray, targets: np.ndarray, labels: list[str]) -> dict:
    m = classification_metrics([labels[t] for t in targets],
                               [labels[i] for i in probs.argmax(1)], labels)
    return {"accuracy": m["accuracy"], "macro_recall": m["macro_recall"],
            "recall": {k: v["recall"] for k, v in m["per_class"].items()}}


def run(name: str, recipe: train.Recipe, report: data.DataReport, weights_dir: Path,
        workers: int, seed: int, keep_probs: bool = False) -> dict:
    items, is_valid = data.split_as_trained(report, recipe.to_dict())
    if not any(is_valid):
        raise SystemExit(f"{name}: the grouped split put no image into validation; "
                         "lower group_block or add images")
    trained = replace(recipe, seed=seed)  # same split, another initialisation and data order
    start = time.perf_counter()
    dls = train.dataloaders(items, is_valid, trained, num_workers=workers)
    learn = train.learner(dls, trained, weights_dir)
    with learn.no_bar(), learn.no_logging():
        train.fit(learn, trained)  # as the notebook: fine_tune, then back to float32 on the CPU
    seconds = time.perf_counter() - start
    labels = [str(v) for v in dls.vocab]
    plain, tta, targets = validation_probs(learn)
    result = {"name": name, "seed": seed, "recipe": recipe.to_dict(), "seconds": round(seconds, 1),
              "plain": summary(plain, targets, labels), "flip_tta": summary(tta, targets, labels)}
    if keep_probs:  # what bench/ensemble.py averages across runs on the same split
        result |= {"labels": labels, "targets": targets.tolist(),
                   "probs": plain.round(5).tolist(), "probs_flip_tta": tta.round(5).tolist()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--recipe", action="append", required=True, metavar="NAME: K=V ...")
    parser.add_argument("--seeds", type=int, nargs="+", help="train each recipe once per seed "
                        "(initialisation and data order; the split stays the recipe's)")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes")
    parser.add_argument("--jsonl", type=Path, help="also append each result here")
    parser.add_argument("--probs", action="store_true", help="with --jsonl: store each run's "
                        "validation probabilities, for bench/ensemble.py")
    args = parser.parse_args()
    settings = Settings.from_env()
    report = data.scan(settings.data_dir)
    print(f"device {train.training_device()}, data {settings.data_dir}, "
          f"{len(report.items)} images", flush=True)
    print(f"{'recipe':<24}{'seed':>5}{'acc':>7}{'macro':>7}{'trash':>7}"
          f"{'acc+flip':>10}{'trash+flip':>11}{'seconds':>9}", flush=True)
    for text in args.recipe:
        name, overrides = parse_recipe(text)
        recipe = train.Recipe(**overrides)
        for seed in args.seeds or [recipe.seed]:
            r = run(name, recipe, report, settings.weights_dir, args.workers, seed, args.probs)
            p, t = r["plain"], r["flip_tta"]
            print(f"{name:<24}{seed:>5}{p['accuracy']:>7.3f}{p['macro_recall']:>7.3f}"
                  f"{p['recall'].get('trash', float('nan')):>7.3f}{t['accuracy']:>10.3f}"
                  f"{t['recall'].get('trash', float('nan')):>11.3f}{r['seconds']:>9.0f}", flush=True)
            if args.jsonl:
                with args.jsonl.open("a") as f:
                    f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
