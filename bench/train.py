"""Train the default recipe and print what the README promises about it.

    python bench/train.py                    # train on $WASTESORT_DATA_DIR into a temp registry
    python bench/train.py -p epochs=8        # the same with a changed notebook parameter
    python bench/train.py --version champion # no training: re-measure an existing version

Prints accuracy, macro recall and per-class recall on the model's own grouped validation
split (measured through ONNX Runtime, as the app runs it) and the training wall time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from wastesort.cli import parse_param
from wastesort.config import Settings
from wastesort.evaluate import evaluate_dir
from wastesort.notebooks import train
from wastesort.predict import OnnxPredictor
from wastesort.registry import Registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", help="re-measure this version or alias instead of training")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    settings = Settings.from_env()
    with tempfile.TemporaryDirectory() as tmp:
        if args.version:
            registry, version = Registry(settings.exports_dir), args.version
        else:
            settings = Settings.from_env(exports_dir=Path(tmp))
            registry = Registry(settings.exports_dir)
            version = train(settings, dict(parse_param(p) for p in args.param))
        card = registry.card(version)
        result = evaluate_dir(settings.data_dir, OnnxPredictor(registry.path(version)), "valid",
                              card["params"])
    print(f"version           {card['version']}")
    print(f"recipe            {json.dumps(card['params'])}")
    print(f"validation images {result['n_images']} (grouped split, seed {card['params']['seed']})")
    print(f"accuracy          {result['accuracy']:.4f}")
    print(f"macro recall      {result['macro_recall']:.4f}")
    for label, c in result["per_class"].items():
        print(f"  recall {label:<10}{c['recall']:.4f}  (n={c['support']})")
    minutes = card.get("training_seconds")
    print(f"training minutes  {minutes / 60:.1f}" if minutes else "training minutes  unknown")


if __name__ == "__main__":
    main()
