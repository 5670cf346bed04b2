"""What the data loaders cost an epoch on this machine, apart from the model.

    python bench/data.py          # the default recipe on $WASTESORT_DATA_DIR

Prints the one-off cost of building the data loaders (mostly decoding and resizing every
image, ``train.resized_images``), then one pass over the training data (with its
augmentation) and one over the validation data, as training sees them.
"""

from __future__ import annotations

import time

from wastesort import data, train
from wastesort.config import Settings


def timed(work):
    """``work()``'s result and the seconds it took."""
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def main() -> None:
    settings, recipe = Settings.from_env(), train.Recipe()
    items, is_valid = data.split_as_trained(data.scan(settings.data_dir), recipe.to_dict())
    dls, build = timed(lambda: train.dataloaders(items, is_valid, recipe))
    print(f"images            {len(items)} ({sum(is_valid)} validation), {recipe.size} px")
    print(f"data loaders      {build:6.1f} s  (decode + resize on 2 threads, once before training)")
    print(f"training pass     {timed(lambda: list(dls.train))[1]:6.1f} s  (augmentation included)")
    print(f"validation pass   {timed(lambda: list(dls.valid))[1]:6.1f} s")


if __name__ == "__main__":
    main()
