"""CycleGAN (Zhu et al. 2017) for unpaired normal <-> pneumonia translation at 28x28.

Two ResNet generators (normal->pneumonia, pneumonia->normal) and two PatchGAN discriminators,
trained with the least-squares adversarial loss, the cycle loss and the identity loss, Adam
(0.5, 0.999), constant lr for the first half and linear decay to zero in the second. Small
on purpose: 28 px images need one down-sampling and a few residual blocks. Left out from the
paper: the history buffer of 50 fakes for the discriminators (a stabiliser, not a loss).

A translated image carries the label of the class it was translated INTO; ``sample`` records
the real TRAIN row it came from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...data.real import Split
from ...training.augment import random_affine
from ...training.loop import autocast, to_device
from ._base import Generator, Samples, to_uint8, to_unit

NORMAL, PNEUMONIA = 0, 1


@dataclass(frozen=True)
class CycleGANConfig:
    profile: str
    seed: int = 0
    epochs: int = 1  # one epoch = as many steps as the larger class needs (CycleGAN's own)
    batch_size: int = 16
    gen_channels: int = 32
    res_blocks: int = 4
    disc_channels: int = 32
    lr: float = 2e-4
    lambda_cycle: float = 10.0
    lambda_identity: float = 5.0  # 0.5 x lambda_cycle, as in the paper
    train_limit: int | None = None  # first N rows of each class (smoke only)


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def resnet_generator(ch: int, blocks: int) -> nn.Module:
    """28 -> 14 (2ch) -> residual blocks -> 28, tanh output in [-1, 1]."""
    return nn.Sequential(
        nn.ReflectionPad2d(3), nn.Conv2d(1, ch, 7), nn.InstanceNorm2d(ch), nn.ReLU(True),
        nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * ch), nn.ReLU(True),
        *[ResBlock(2 * ch) for _ in range(blocks)],
        nn.ConvTranspose2d(2 * ch, ch, 3, stride=2, padding=1, output_padding=1),
        nn.InstanceNorm2d(ch), nn.ReLU(True),
        nn.ReflectionPad2d(3), nn.Conv2d(ch, 1, 7), nn.Tanh())


def patch_discriminator(ch: int) -> nn.Module:
    """28 -> 14 -> 7: a 7x7 map of real/fake scores, each seeing a patch of the image."""
    return nn.Sequential(
        nn.Conv2d(1, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1), nn.InstanceNorm2d(2 * ch),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(2 * ch, 4 * ch, 3, padding=1), nn.InstanceNorm2d(4 * ch), nn.LeakyReLU(0.2, True),
        nn.Conv2d(4 * ch, 1, 3, padding=1))


def _lsgan(scores: torch.Tensor, real: bool) -> torch.Tensor:
    return F.mse_loss(scores.float(), torch.full_like(scores.float(), 1.0 if real else 0.0))


class CycleGAN(Generator):
    """Unpaired normal <-> pneumonia translation (see the module docstring)."""

    method = "cyclegan"
    PROFILES = {
        "smoke": CycleGANConfig("smoke", epochs=1, batch_size=8, gen_channels=8, res_blocks=1,
                                disc_channels=8, train_limit=32),
        # 20 x 219 steps of 16 per class: 1,922 s of training on the idle 2-core CPU (2 threads),
        # then ~640 images/s translated (README "Synthetic data").
        "quick": CycleGANConfig("quick", epochs=20, batch_size=16, gen_channels=32, res_blocks=4,
                                disc_channels=32),
        "paper": CycleGANConfig("paper", epochs=100, batch_size=16, gen_channels=64,
                                res_blocks=6, disc_channels=64),
    }

    def build(self) -> dict[str, Any]:
        cfg, dev = self.config, self.device
        self.g = {"n2p": resnet_generator(cfg.gen_channels, cfg.res_blocks).to(dev),
                  "p2n": resnet_generator(cfg.gen_channels, cfg.res_blocks).to(dev)}
        self.d = {NORMAL: patch_discriminator(cfg.disc_channels).to(dev),
                  PNEUMONIA: patch_discriminator(cfg.disc_channels).to(dev)}
        betas = (0.5, 0.999)
        opt_g = torch.optim.Adam([*self.g["n2p"].parameters(), *self.g["p2n"].parameters()],
                                 lr=cfg.lr, betas=betas)
        opt_d = torch.optim.Adam([*self.d[NORMAL].parameters(), *self.d[PNEUMONIA].parameters()],
                                 lr=cfg.lr, betas=betas)
        self.opt = {"g": opt_g, "d": opt_d}
        self.sched = {k: torch.optim.lr_scheduler.LambdaLR(o, self._lr_factor)
                      for k, o in self.opt.items()}
        return {"g_n2p": self.g["n2p"], "g_p2n": self.g["p2n"], "d_normal": self.d[NORMAL],
                "d_pneumonia": self.d[PNEUMONIA], "opt_g": opt_g, "opt_d": opt_d,
                "sched_g": self.sched["g"], "sched_d": self.sched["d"]}

    def _lr_factor(self, epoch: int) -> float:
        half = self.config.epochs / 2  # constant, then linear decay to 0 (stepped per epoch)
        return 1.0 if epoch < half else max(0.0, 1.0 - (epoch - half) / max(half, 1))

    def prepare(self, train: Split) -> int:
        self.by_class = {}
        for c in (NORMAL, PNEUMONIA):
            rows = np.flatnonzero(train.labels == c)[:self.config.train_limit]
            self.by_class[c] = to_unit(to_device(train.images[rows], self.device))
        n = max(len(x) for x in self.by_class.values())
        return max(1, -(-n // self.config.batch_size))

    def train_step(self, gen: torch.Generator) -> dict[str, torch.Tensor]:
        cfg, g, d = self.config, self.g, self.d
        real = {c: x[torch.randint(len(x), (cfg.batch_size,), generator=gen, device=x.device)]
                for c, x in self.by_class.items()}
        with autocast(self.device):
            fake_p, fake_n = g["n2p"](real[NORMAL]), g["p2n"](real[PNEUMONIA])
            adv = _lsgan(d[PNEUMONIA](fake_p), True) + _lsgan(d[NORMAL](fake_n), True)
            cycle = (F.l1_loss(g["p2n"](fake_p).float(), real[NORMAL]) +
                     F.l1_loss(g["n2p"](fake_n).float(), real[PNEUMONIA]))
            identity = (F.l1_loss(g["n2p"](real[PNEUMONIA]).float(), real[PNEUMONIA]) +
                        F.l1_loss(g["p2n"](real[NORMAL]).float(), real[NORMAL]))
            loss_g = adv + cfg.lambda_cycle * cycle + cfg.lambda_identity * identity
        self.opt["g"].zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt["g"].step()
        with autocast(self.device):
            loss_d = 0.5 * (_lsgan(d[NORMAL](real[NORMAL]), True) +
                            _lsgan(d[NORMAL](fake_n.detach()), False) +
                            _lsgan(d[PNEUMONIA](real[PNEUMONIA]), True) +
                            _lsgan(d[PNEUMONIA](fake_p.detach()), False))
        self.opt["d"].zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt["d"].step()
        return {"loss_g": loss_g.detach(), "loss_d": loss_d.detach(), "adv": adv.detach(),
                "cycle": cycle.detach(), "identity": identity.detach()}

    def end_epoch(self) -> None:
        for sched in self.sched.values():
            sched.step()

    @torch.no_grad()
    def sample(self, counts: dict[int, int], seed: int, on_batch=None) -> Samples:
        """Translate real TRAIN images: pneumonia images from normal sources and vice versa.

        Sources are drawn without replacement in a seeded order; when more images are asked
        for than a class has, later passes reuse sources with a small random rotation/shift
        (a translation is deterministic, so a bare repeat would be an exact duplicate).
        """
        if self.train is None:
            raise RuntimeError("fit or load the generator before sampling")
        rng = np.random.default_rng(seed)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        images, labels, sources, repeats = [], [], [], 0
        total = sum(int(n) for n in counts.values())
        for target, net, source in ((NORMAL, self.g["p2n"], PNEUMONIA),
                                    (PNEUMONIA, self.g["n2p"], NORMAL)):
            n = int(counts.get(target, 0))
            pool = np.flatnonzero(self.train.labels == source)
            rows = np.concatenate([rng.permutation(pool) for _ in range(-(-n // len(pool)))]
                                  )[:n] if n else np.zeros(0, np.int64)
            net.eval()
            for i in range(0, n, 256):
                batch = rows[i:i + 256]
                x = to_unit(to_device(self.train.images[batch], self.device))
                repeat = torch.from_numpy(np.arange(i, i + len(batch)) >= len(pool))
                if repeat.any():
                    mask = repeat.to(self.device)
                    x[mask] = random_affine(x[mask], gen, padding_mode="border")
                with autocast(self.device):
                    images.append(to_uint8(net(x)))
                repeats += int(repeat.sum())
                if on_batch is not None:
                    on_batch(sum(len(a) for a in images), total)
            labels.append(np.full(n, target, np.int64))
            sources.append(rows.astype(np.int64))
        return Samples(np.concatenate(images) if images else np.zeros((0, 28, 28), np.uint8),
                       np.concatenate(labels), np.concatenate(sources),
                       {"source_repeats": repeats, "source_split": "train"})
