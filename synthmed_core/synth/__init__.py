"""Synthetic sets: named, immutable npz + card folders (``sets``), and their sources
(``importer`` for external image folders; generators live beside them)."""
from .importer import ImportReport, import_csv, import_folder
from .sets import list_sets, load_set, set_dir, validate_name, write_set

__all__ = ["ImportReport", "import_csv", "import_folder", "list_sets", "load_set", "set_dir",
           "validate_name", "write_set"]
