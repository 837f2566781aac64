"""Synthetic sets: named, immutable npz + card folders (``sets``), and their sources:
``importer`` (external image folders), ``generators`` + ``generate`` (our own CycleGAN and
DDPM, trained on real train). ``quality`` measures a set against real images in the feature
space of a domain ``encoder``; ``select`` filters one into a new set; ``grid`` draws one.
Only the light modules are imported here: the others pull in torch and diffusers."""
from .importer import ImportReport, import_csv, import_folder
from .sets import list_sets, load_set, set_dir, validate_name, write_set

__all__ = ["ImportReport", "import_csv", "import_folder", "list_sets", "load_set", "set_dir",
           "validate_name", "write_set"]
