"""What the data loaders cost an epoch on this machine, apart from the model.

    python bench/data.py          # the default recipe on $WASTESORT_DATA_DIR

Prints the one-off cost of decoding and resizing every image (``train.resized_images``),
what that decoding would cost again each epoch, and one pass over the training data (with
its augmentation) and the validation data as training sees them.
"""

from __future__ import annotations

import time

from fastai.vision.augment import Resize, ResizeMethod

from wastesort import data, train
from wastesort.config import Settings


def seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    settings, recipe = Settings.from_env(), train.Recipe()
    items, is_valid = data.split_as_trained(data.scan(settings.data_dir), recipe.to_dict())
    resize = Resize(recipe.size, method=ResizeMethod.Squish)
    decode = seconds(lambda: train.resized_images(items, resize))
    dls = train.dataloaders(items, is_valid, recipe)
    print(f"images            {len(items)} ({sum(is_valid)} validation), {recipe.size} px")
    print(f"decode + resize   {decode:6.1f} s  (2 threads, once before training)")
    print(f"training pass     {seconds(lambda: list(dls.train)):6.1f} s  (augmentation included)")
    print(f"validation pass   {seconds(lambda: list(dls.valid)):6.1f} s")


if __name__ == "__main__":
    main()
