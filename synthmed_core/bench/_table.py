"""The benchmark's text tables (the JSON holds the same numbers, unrounded)."""
from __future__ import annotations

import math

# (header, row key, format) of the main table, left to right.
COLUMNS = (
    ("arch", "arch", "{}"), ("px", "size", "{}"), ("compile", "compile", "{}"),
    ("train img/s", "train_ips", "{:.0f}"), ("pure img/s", "pure_ips", "{:.0f}"),
    ("overhead", "overhead", "{:.3f}"), ("overhead cpu-s", "overhead_cpu", "{:.3f}"),
    ("eval img/s", "eval_ips", "{:.0f}"),
    ("peak MiB", "peak_mem_mib", "{:.0f}"), ("ref img/s", "ref_train_ips", "{:.0f}"),
    ("ours/ref", "speedup_vs_ref", "{:.2f}x"), ("Grad-CAM ms", "cam_ms", "{:.1f}"),
)
CONCURRENT_COLUMNS = (
    ("arch", "arch", "{}"), ("px", "size", "{}"), ("K", "k", "{}"),
    ("threads each", "threads_each", "{}"), ("aggregate img/s", "aggregate_ips", "{:.0f}"),
    ("per process img/s", "per_process_ips", "{:.0f}"), ("x vs K=1", "vs_k1", "{:.2f}"),
    ("sum peak MiB", "peak_mem_mib_sum", "{:.0f}"),
)


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def table(rows: list[dict], columns=COLUMNS) -> str:
    """A plain aligned text table of ``rows`` (dicts) over ``columns``."""
    cells = [[h for h, _, _ in columns]] + [[_cell(r.get(k), f) for _, k, f in columns]
                                             for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if j > 2 else c.ljust(w) for j, (c, w) in
                       enumerate(zip(line, widths))) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report_text(report: dict) -> str:
    """The whole printed report: header, the main table, notes, the concurrency table."""
    m, cfg = report["machine"], report["config"]
    out = [f"synthmed bench on {m['device_name']} (torch {m['torch']}, {m['cpu_count']} CPU "
           f"cores, {m['threads']} threads, load average {m['load_avg']})",
           f"data: {report['data']}; batch {cfg['batch_size']}, {cfg['batches']} batches per "
           f"pass, {cfg['rounds']} rounds, augmentation {'on' if cfg['augment'] else 'off'}",
           "", table(report["rows"]), ""]
    kinds = sorted({r["peak_mem_kind"] for r in report["rows"] if not r.get("error")})
    out += [
        "train img/s = a real trainer epoch (_loop.train_epoch with the run's progress hook, "
        "on-device preprocessing/augmentation); pure img/s = forward+backward+AdamW on "
        "pre-staged batches; overhead = trainer time / pure time, median of paired rounds "
        "(ratio of the fastest passes: "
        + ", ".join(f"{r['arch']}@{r['size']}/{r['compile']} {r['overhead_min']:.3f}"
                    for r in report["rows"] if not r.get("error")) + "; each round: "
        + "; ".join(f"{r['arch']}@{r['size']}/{r['compile']} "
                    + " ".join(f"{x:.3f}" for x in r["overhead_rounds"])
                    for r in report["rows"] if not r.get("error"))
        + "); overhead cpu-s = the same ratio of this process's CPU seconds, the steadier "
        "figure on a CPU shared with other work when torch runs one thread.",
        f"ours/ref = train img/s / the reference-style pipeline (torchvision per-sample PIL "
        f"transforms, DataLoader with {cfg['ref_workers']} workers, fp32, no channels_last, "
        f"loss.item() per step) on the same model and images.",
        f"peak MiB = {', '.join(kinds)}, over the timed training passes.",
        "Grad-CAM: " + ("; ".join(sorted({r['cam_note'] for r in report['rows']})) or "-"),
        "store grid query: " + (f"{report['store']['ms']:.1f} ms" if report["store"]["ms"]
                                is not None else "-") + f" ({report['store']['note']})",
    ]
    out += [f"FAILED {r['arch']}@{r['size']}/{r['compile']}: {r['error']}"
            for r in report["rows"] if r.get("error")]
    warm = [f"{r['arch']}@{r['size']}/{r['compile']} {r['warmup_s']:.1f} s"
            for r in report["rows"] if not r.get("error")]
    out.append("first steps (compilation included): " + ", ".join(warm))
    if report.get("concurrent"):
        out += ["", f"concurrent trainers on {m['device']} (aggregate = all processes' images "
                "over the span from first start to last finish):",
                table(report["concurrent"], CONCURRENT_COLUMNS)]
    return "\n".join(out)
