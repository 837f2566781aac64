"""Where a model looks: CAMs from pytorch-grad-cam and how they are shown.

- ``cams``: a finished run's model rebuilt from its spec, its predictions and CAM overlays;
- ``layers``: which layer a CAM reads and how ViT tokens become a map;
- ``stats``: CAMs over many images (real vs synthetic, run vs run);
- ``overlays``: drawing (X-ray, heat map at an opacity, panels as PNG), torch-free.
"""
__all__ = ["cams", "layers", "overlays", "stats"]
