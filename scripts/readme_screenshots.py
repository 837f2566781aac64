"""Copy the browser tests' best screenshots into docs/img/ for the README, cropped, scaled to
at most 1000 px wide and palette-compressed (tens of KB each).

    OMP_NUM_THREADS=1 python -m pytest -q tests/browser    # writes data/screenshots/*.png
    python scripts/readme_screenshots.py                    # -> docs/img/explorer-*.png
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SOURCE = Path(os.environ.get("SYNTHMED_SCREENSHOTS") or REPO / "data" / "screenshots")
TARGET = REPO / "docs" / "img"
# (test screenshot, README image, crop box in the 1600 x 1000 viewport or None, max width)
SHOTS = [
    ("cell-detail.png", "explorer-cell-detail.png", (300, 480, 1600, 880), 1000),
    ("gradcam.png", "explorer-gradcam.png", (300, 0, 1600, 1000), 1000),
    ("predict.png", "explorer-predict.png", (300, 0, 1600, 1000), 1000),
    ("job-progress.png", "explorer-sidebar-job.png", (0, 600, 300, 1000), 300),
]


def main() -> int:
    TARGET.mkdir(parents=True, exist_ok=True)
    missing = [name for name, *_ in SHOTS if not (SOURCE / name).is_file()]
    if missing:
        print(f"missing in {SOURCE}: {missing}; run the browser tests first", file=sys.stderr)
        return 1
    for name, out, box, width in SHOTS:
        image = Image.open(SOURCE / name).convert("RGB")
        image = image.crop(box) if box else image
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)),
                                 Image.LANCZOS)
        image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                               dither=Image.Dither.NONE)
        image.save(TARGET / out, optimize=True)
        print(f"{TARGET / out}: {image.width}x{image.height}, "
              f"{(TARGET / out).stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
