"""Which CPU ops make a training step depend on the number of torch threads, and what making it
independent would cost.

    python scripts/bench_threads.py [--arch resnet18] [--size 28] [--steps 6]

1. Forward: runs the model (train mode, random init, batch 128) with 1 and with 2 threads and
   names the first layer whose output differs, for channels-last and contiguous inputs.
2. BatchNorm alone (train mode) on the shapes a ResNet meets at 28 px, both memory formats.
3. Backward: with a thread-independent BatchNorm (each channel's statistics in one sequential
   pass, ``_OrderedBatchNorm``), the parameters whose gradient still differs, with oneDNN on
   and off.
4. Cost: the median time of a training step (forward, backward, AdamW) at 1 thread with
   oneDNN on (synthmed's) and off (thread-independent), side by side in one run.
"""
from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch
import torch.nn.functional as F


class _OrderedBatchNorm(torch.nn.BatchNorm2d):
    """BatchNorm2d whose training statistics take ATen's per-channel contiguous kernel (one
    thread per channel, so the same sums at any thread count): N x C x 1 x 1 inputs are
    viewed as 1 x C x N x 1, channels-last inputs made contiguous."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        if x.shape[2] * x.shape[3] == 1:
            return super().forward(x.permute(2, 1, 0, 3).contiguous()).permute(2, 1, 0, 3)
        return super().forward(x.contiguous())


def model(arch: str, ordered_bn: bool, channels_last: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    m = timm.create_model(arch, num_classes=2, in_chans=3)
    if ordered_bn:
        for mod in m.modules():
            if type(mod) is torch.nn.BatchNorm2d:
                mod.__class__ = _OrderedBatchNorm
    return m.to(memory_format=torch.channels_last) if channels_last else m


def first_differing_layer(arch: str, x: torch.Tensor, channels_last: bool) -> str:
    outs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        m, rec = model(arch, False, channels_last), []
        for name, mod in m.named_modules():
            if not list(mod.children()):
                mod.register_forward_hook(lambda _m, _i, o, n=name: rec.append((n, o.detach())))
        m(x.contiguous(memory_format=torch.channels_last) if channels_last else x)
        outs.append(rec)
    for (name, a), (_, b) in zip(*outs):
        if not torch.equal(a, b):
            return f"{name} (output {tuple(a.shape)})"
    return "none: the forward pass is thread-independent"


def grads_differing(arch: str, x: torch.Tensor, y: torch.Tensor) -> list[str]:
    out = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        m = model(arch, True, False)
        F.cross_entropy(m(x), y).backward()
        out.append({n: p.grad.clone() for n, p in m.named_parameters()})
    return [n for n in out[0] if not torch.equal(out[0][n], out[1][n])]


def step_ms(arch: str, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    torch.set_num_threads(1)
    m = model(arch, not torch.backends.mkldnn.enabled, torch.backends.mkldnn.enabled)
    opt = torch.optim.AdamW(m.parameters(), 1e-3)
    xx = x.contiguous(memory_format=torch.channels_last) if torch.backends.mkldnn.enabled else x
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = F.cross_entropy(m(xx), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:  # the first step warms up
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--steps", type=int, default=6)
    a = p.parse_args()
    torch.manual_seed(0)
    x = torch.randn(128, 3, a.size, a.size)
    y = torch.randint(0, 2, (128,))
    print(f"torch {torch.__version__}, {a.arch} at {a.size} px, batch 128, 1 vs 2 threads")
    for cl in (True, False):
        print(f"1. forward, {'channels-last' if cl else 'contiguous'}: first layer whose output "
              f"differs: {first_differing_layer(a.arch, x, cl)}")
    for shape in ((128, 64, 14, 14), (128, 256, 2, 2), (128, 512, 1, 1)):
        t = torch.randn(*shape)
        for cl in (False, True):
            res = []
            for threads in (1, 2):
                torch.set_num_threads(threads)
                res.append(F.batch_norm(t.contiguous(memory_format=torch.channels_last)
                                        if cl else t, None, None, training=True))
            print(f"2. BatchNorm2d train {shape} {'channels-last' if cl else 'contiguous   '}: "
                  f"{'same' if torch.equal(*res) else 'DIFFERS'}")
    for on in (True, False):
        torch.backends.mkldnn.enabled = on
        bad = grads_differing(a.arch, x, y)
        print(f"3. backward with thread-independent BatchNorm, oneDNN {'on ' if on else 'off'}: "
              f"{len(bad)} parameter gradients differ {bad}")
    rounds = []
    for _ in range(3):
        row = {}
        for on in (True, False):
            torch.backends.mkldnn.enabled = on
            row[on] = step_ms(a.arch, x, y, a.steps)
        rounds.append(row)
    on_ms = statistics.median(r[True] for r in rounds)
    off_ms = statistics.median(r[False] for r in rounds)
    print(f"4. training step at 1 thread, median of 3 rounds: oneDNN on + channels-last "
          f"{on_ms:.0f} ms (synthmed), oneDNN off + thread-independent BatchNorm {off_ms:.0f} ms:"
          f" {off_ms / on_ms:.1f}x the time")


if __name__ == "__main__":
    main()
