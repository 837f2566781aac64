"""Class-conditional DDPM on diffusers' ``UNet2DModel``, sampled with DDIM and classifier-free
guidance (Ho & Salimans 2022).

Images are padded from 28 to 32 px (the UNet halves the side per level) and cropped back.
Conditioning uses the UNet's own class embedding (``num_class_embeds=3``): 0 normal,
1 pneumonia, 2 the "no class" label that training substitutes with probability
``p_uncond`` so one network learns both the conditional and the unconditional model.
Training noise follows ``DDPMScheduler`` (cosine betas); sampling uses ``DDIMScheduler`` built
from the same config, with the EMA weights (diffusers ``EMAModel``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from diffusers.optimization import get_constant_schedule_with_warmup
from diffusers.training_utils import EMAModel

from ...data.real import Split
from ...training.loop import autocast, to_device
from ._base import Generator, Samples, sampling_field, to_uint8, to_unit

NULL_CLASS = 2  # the unconditional label of classifier-free guidance
PAD = 2  # 28 + 2 x 2 = 32


@dataclass(frozen=True)
class DDPMConfig:
    profile: str
    seed: int = 0
    epochs: int = 1  # one epoch = ceil(train images / batch) steps
    batch_size: int = 128
    block_out_channels: tuple[int, ...] = (16, 32, 64)
    attention: bool = False  # self-attention in the lowest-resolution (8x8) block
    layers_per_block: int = 1
    norm_num_groups: int = 8
    lr: float = 1e-3
    warmup_steps: int = 200
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    p_uncond: float = 0.1
    ema_decay: float = 0.999
    train_limit: int | None = None  # first N train rows (smoke only)
    guidance_scale: float = sampling_field(2.0)  # 1 = purely conditional (half the cost)
    ddim_steps: int = sampling_field(50)
    sample_batch: int = sampling_field(256)


def build_unet(cfg: DDPMConfig) -> UNet2DModel:
    """A 1-channel 32x32 UNet2DModel with a 3-way class embedding added to the time embedding."""
    levels = len(cfg.block_out_channels)
    down = ["DownBlock2D"] * levels
    up = ["UpBlock2D"] * levels
    if cfg.attention:
        down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
    return UNet2DModel(sample_size=28 + 2 * PAD, in_channels=1, out_channels=1,
                       block_out_channels=tuple(cfg.block_out_channels),
                       layers_per_block=cfg.layers_per_block, norm_num_groups=cfg.norm_num_groups,
                       down_block_types=tuple(down), up_block_types=tuple(up),
                       class_embed_type=None, num_class_embeds=3)


class DDPM(Generator):
    """Class-conditional diffusion (see the module docstring)."""

    method = "ddpm"
    PROFILES = {
        "smoke": DDPMConfig("smoke", epochs=1, batch_size=16, block_out_channels=(8, 16),
                            norm_num_groups=4, warmup_steps=1, train_limit=64, ddim_steps=4,
                            sample_batch=64),
        # 0.64 M parameters, 80 x 37 = 2,960 steps of 128. Measured on the idle 2-core CPU
        # (2 threads): 1,799 s training + 4,708 images (25 guided DDIM steps) at 6.4 images/s,
        # 42 min in all (README "Synthetic data").
        "quick": DDPMConfig("quick", epochs=80, batch_size=128, block_out_channels=(16, 32, 64),
                            ddim_steps=25),
        "paper": DDPMConfig("paper", epochs=500, batch_size=128, block_out_channels=(64, 128, 128),
                            layers_per_block=2, norm_num_groups=32, attention=True, lr=2e-4,
                            warmup_steps=500, ema_decay=0.9995, ddim_steps=100),
    }

    def build(self) -> dict[str, Any]:
        cfg = self.config
        self.unet = build_unet(cfg).to(self.device)
        self.noise = DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps,
                                   beta_schedule=cfg.beta_schedule)
        self.opt = torch.optim.AdamW(self.unet.parameters(), lr=cfg.lr, weight_decay=0.0)
        self.sched = get_constant_schedule_with_warmup(self.opt, cfg.warmup_steps)
        self.ema = EMAModel(self.unet.parameters(), decay=cfg.ema_decay, use_ema_warmup=True,
                            power=3 / 4)
        return {"unet": self.unet, "opt": self.opt, "sched": self.sched, "ema": self.ema}

    def load(self, path, train: Split) -> None:
        super().load(path, train)
        self.ema.to(self.device)  # EMAModel keeps its shadow weights where the file put them

    def prepare(self, train: Split) -> int:
        rows = slice(None, self.config.train_limit)
        x = to_unit(to_device(train.images[rows], self.device))
        self.x = F.pad(x, (PAD,) * 4, mode="replicate")  # no artificial black frame to learn
        self.y = to_device(train.labels[rows], self.device).long()
        return max(1, -(-len(self.x) // self.config.batch_size))

    def train_step(self, gen: torch.Generator) -> dict[str, torch.Tensor]:
        cfg, dev = self.config, self.device
        b = cfg.batch_size
        idx = torch.randint(len(self.x), (b,), generator=gen, device=dev)
        x0, y = self.x[idx], self.y[idx]
        drop = torch.rand(b, generator=gen, device=dev) < cfg.p_uncond
        y = torch.where(drop, torch.full_like(y, NULL_CLASS), y)
        noise = torch.randn(x0.shape, generator=gen, device=dev)
        t = torch.randint(cfg.num_train_timesteps, (b,), generator=gen, device=dev)
        self.unet.train()
        with autocast(dev):
            pred = self.unet(self.noise.add_noise(x0, noise, t), t, class_labels=y).sample
        loss = F.mse_loss(pred.float(), noise)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 1.0)
        self.opt.step()
        self.sched.step()
        self.ema.step(self.unet.parameters())
        return {"loss": loss.detach()}

    @torch.no_grad()
    def sample(self, counts: dict[int, int], seed: int, on_batch=None) -> Samples:
        """DDIM (eta 0) from seeded noise with the EMA weights and guidance scale w:
        eps = eps_uncond + w (eps_cond - eps_uncond)."""
        cfg, dev = self.config, self.device
        labels = np.concatenate([np.full(int(counts.get(c, 0)), c, np.int64) for c in (0, 1)])
        ddim = DDIMScheduler.from_config(self.noise.config)
        ddim.set_timesteps(cfg.ddim_steps)
        gen = torch.Generator(device=dev)
        gen.manual_seed(seed)
        self.ema.store(self.unet.parameters())
        self.ema.copy_to(self.unet.parameters())
        self.unet.eval()
        out = []
        try:
            for i in range(0, len(labels), cfg.sample_batch):
                y = torch.from_numpy(labels[i:i + cfg.sample_batch]).to(dev)
                x = torch.randn((len(y), 1, 28 + 2 * PAD, 28 + 2 * PAD), generator=gen, device=dev)
                for t in ddim.timesteps:
                    x = ddim.step(self._guided_eps(x, t, y), t, x).prev_sample
                out.append(to_uint8(x[:, :, PAD:-PAD, PAD:-PAD]))
                if on_batch is not None:
                    on_batch(i + len(y), len(labels))
        finally:
            self.ema.restore(self.unet.parameters())
        images = np.concatenate(out) if out else np.zeros((0, 28, 28), np.uint8)
        return Samples(images, labels, None, {"guidance_scale": cfg.guidance_scale,
                                              "ddim_steps": cfg.ddim_steps})

    def _guided_eps(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        w = self.config.guidance_scale
        with autocast(self.device):
            if w == 1.0:
                return self.unet(x, t, class_labels=y).sample.float()
            both = self.unet(torch.cat([x, x]), t,
                             class_labels=torch.cat([y, torch.full_like(y, NULL_CLASS)])).sample
        cond, uncond = both.float().chunk(2)
        return uncond + w * (cond - uncond)
