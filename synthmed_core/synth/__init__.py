"""Synthetic sets and their sources (the set files themselves are ``data.synthetic``):
``importer`` (external image folders), ``generators`` + ``generate`` (our own CycleGAN and
DDPM, trained on real train). ``quality`` measures a set against real images in the feature
space of a domain ``encoder``; ``select`` filters one into a new set; ``mosaic`` draws one.
Only the light modules are imported here: the others pull in torch and diffusers."""
from .importer import ImportReport, import_csv, import_folder

__all__ = ["ImportReport", "import_csv", "import_folder"]
