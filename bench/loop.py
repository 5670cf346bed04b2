"""The feedback loop on a realistic shift: how much do N reviewed corrections buy?

The shift: the sorting station gets a blue conveyor belt and dim, warm light. Every
trashnet photo is re-lit (gamma 1.8, warm tint) after its light, unsaturated background
pixels are painted belt-blue. Nothing about the objects changes.

- *Shifted hold-back*: the shifted copies of the champion's validation images. Neither
  model ever trains on these objects, in either look.
- *Corrections*: shifted copies of base training images that the champion gets wrong (a
  user flags only mistakes), N of them drawn at random, with their true labels as a
  reviewer would confirm them. They go through ``notebooks/retrain.ipynb`` exactly as a
  scheduled retrain would (no Label Studio here; the e2e test covers that path).
- *Base validation*: the original-look validation split, untouched by the shift.

For each N the retrain starts from the same champion in a private copy of the registry.

    python bench/loop.py                 # N = 50 and 200 (~25 min on 2 cores)
    python bench/loop.py --n 200 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from wastesort import retrain  # noqa: E402
from wastesort.config import Settings  # noqa: E402
from wastesort.data import scan  # noqa: E402
from wastesort.evaluate import evaluate_items, score_items  # noqa: E402
from wastesort.notebooks import run_notebook  # noqa: E402
from wastesort.predict import OnnxPredictor  # noqa: E402
from wastesort.registry import Registry  # noqa: E402

BELT_BLUE = np.array([30, 60, 150], dtype=np.float64)
WARM_DIM = np.array([1.0, 0.7, 0.45])


def shift(image: Image.Image) -> Image.Image:
    """Blue belt behind the object, then dim warm light over everything."""
    a = np.asarray(image.convert("RGB"), dtype=np.float64)
    brightness, spread = a.mean(axis=2), a.max(axis=2) - a.min(axis=2)
    background = (brightness > 150) & (spread < 40)
    a[background] = BELT_BLUE * (brightness[background, None] / 255)
    a = ((a / 255) ** 1.8) * WARM_DIM
    return Image.fromarray((a * 255).clip(0, 255).astype(np.uint8))


def write_shifted(items, folder: Path) -> None:
    for item in items:
        (folder / item.label).mkdir(parents=True, exist_ok=True)
        shift(Image.open(item.path)).save(folder / item.label / f"{item.path.stem}.jpg", quality=92)


def copy_registry(source: Registry, target: Path) -> Registry:
    champion = source.resolve("champion")
    shutil.copytree(source.path(champion), target / champion)
    (target / "aliases.json").write_text(json.dumps({"champion": [champion]}))
    return Registry(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeat", type=int, default=1, help="feedback_repeat")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()

    settings = Settings.from_env()
    source = Registry(settings.exports_dir)
    card = source.card("champion")
    work = args.keep or Path(tempfile.mkdtemp(prefix="wastesort-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    base = retrain.merge(scan(settings.data_dir), card["params"], [], 0)

    start = time.perf_counter()
    write_shifted(base.base_valid, work / "shifted-valid")
    write_shifted(base.train, work / "shifted-pool")
    print(f"shifted {len(base.base_valid)} validation and {len(base.train)} training images "
          f"in {time.perf_counter() - start:.0f} s", flush=True)
    shifted_valid = scan(work / "shifted-valid").items
    pool = scan(work / "shifted-pool").items

    champion = OnnxPredictor(source.path("champion"))
    mistakes = [s.item for s in score_items(champion, pool) if s.prediction.label != s.item.label]
    print(f"the champion gets {len(mistakes)} of {len(pool)} shifted training images wrong",
          flush=True)
    rows = [("champion", card["version"], 0, evaluate_items(champion, shifted_valid)["accuracy"],
             card["metrics"]["accuracy"], None, "-")]
    for n in args.n:
        picked = random.Random(args.seed).sample(mistakes, min(n, len(mistakes)))
        reviewed = work / f"reviewed-{n}"
        for item in picked:
            (reviewed / item.label).mkdir(parents=True, exist_ok=True)
            shutil.copy2(item.path, reviewed / item.label / item.path.name)
        registry = copy_registry(source, work / f"exports-{n}")
        version = f"loop-n{n}"
        start = time.perf_counter()
        run_notebook("retrain", work / f"retrain-{n}.ipynb", {
            "data_dir": str(settings.data_dir), "exports_dir": str(registry.root),
            "weights_dir": str(settings.weights_dir), "reviewed_dir": str(reviewed),
            "pull": False, "epochs": args.epochs, "lr": args.lr, "feedback_repeat": args.repeat,
            "version_id": version})
        minutes = (time.perf_counter() - start) / 60
        candidate = registry.card(version)
        shifted = evaluate_items(OnnxPredictor(registry.path(version)), shifted_valid)["accuracy"]
        rows.append((f"after {n}", version, n, shifted, candidate["metrics"]["accuracy"], minutes,
                     "passed" if candidate["retrain"]["gate"]["passed"] else "rejected"))
        print(f"N={n}: shifted {shifted:.3f}, base {candidate['metrics']['accuracy']:.3f}, "
              f"{minutes:.1f} min, {candidate['retrain']['outcome']}", flush=True)

    print(f"\nshifted hold-back: {len(shifted_valid)} images; base validation: "
          f"{card['metrics']['n_images']} images; epochs {args.epochs}, lr {args.lr}, "
          f"feedback_repeat {args.repeat}")
    print(f"{'model':<12}{'N':>5}{'shifted acc':>13}{'base acc':>10}{'retrain min':>13}  gate")
    before_shifted, before_base = rows[0][3], rows[0][4]
    for name, _, n, shifted, base_acc, minutes, verdict in rows:
        print(f"{name:<12}{n:>5}{shifted:>13.3f}{base_acc:>10.3f}"
              f"{'' if minutes is None else f'{minutes:.1f}':>13}  {verdict}")
    for name, _, n, shifted, base_acc, _, _ in rows[1:]:
        print(f"N={n}: shifted {100 * (shifted - before_shifted):+.1f} points, "
              f"base {100 * (base_acc - before_base):+.1f} points")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
