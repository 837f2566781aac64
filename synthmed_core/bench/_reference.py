"""A reference-style pipeline, the way a typical notebook trains the same model on the same
images: per-sample PIL transforms (torchvision), a DataLoader, fp32, no channels_last, plain
torch AdamW, and ``loss.item()`` every step for the running loss."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ._data import NATIVE_SIZE
from ._measure import timed
from ._trainer import RECIPE


class ArrayImages(Dataset):
    """uint8 images + labels served one PIL image at a time through ``transform``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def reference_transform(mean: float, std: float, size: int, augment: bool):
    """torchvision's per-sample version of ``Preprocess``: the same rotation (+-10 deg) and
    shift (+-2 px of 28) as ``augment.random_affine``, bilinear resize, normalisation."""
    from torchvision import transforms as T

    steps = ([T.RandomAffine(degrees=10, translate=(2 / NATIVE_SIZE, 2 / NATIVE_SIZE),
                             interpolation=T.InterpolationMode.BILINEAR)] if augment else [])
    if size != NATIVE_SIZE:
        steps.append(T.Resize(size, interpolation=T.InterpolationMode.BILINEAR))
    return T.Compose(steps + [T.ToTensor(), T.Normalize([mean], [std])])


def reference_epoch(model: torch.nn.Module, loader: DataLoader, opt, device: torch.device
                    ) -> float:
    model.train()
    running = 0.0
    for xb, yb in loader:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        running += loss.item()
    return running


def measure_reference(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray,
                      mean: float, std: float, size: int, batch_size: int, augment: bool,
                      device: torch.device, workers: int, warmup_batches: int = 2,
                      reps: int = 2) -> float:
    """Training images/s of the reference pipeline on ``model`` (a fresh, uncompiled one; it
    is trained) in fp32 and contiguous memory over ``images``: one warm-up epoch of a few
    batches, one timed epoch."""
    ref = model.to(device, memory_format=torch.contiguous_format).float()
    opt = torch.optim.AdamW(ref.parameters(), lr=RECIPE.base_lr * batch_size / 512,
                            weight_decay=RECIPE.weight_decay)
    tf = reference_transform(mean, std, size, augment)

    def loader(n: int) -> DataLoader:
        return DataLoader(ArrayImages(images[:n], labels[:n], tf), batch_size=batch_size,
                          shuffle=True, num_workers=workers, drop_last=True,
                          pin_memory=device.type == "cuda")

    reference_epoch(ref, loader(warmup_batches * batch_size), opt, device)
    full = loader(len(labels))
    n = len(full) * batch_size
    return n / min(timed(lambda: reference_epoch(ref, full, opt, device), device)
                   for _ in range(max(1, reps)))
