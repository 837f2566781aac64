"""Images in: the MedMNIST files, validated (``real``), synthetic sets on disk
(``synthetic``: named, immutable npz + card folders), one image file's preprocessing
(``images``) and uploaded files decoded (``uploads``: PNG, JPEG, DICOM, with limits checked
before decoding)."""
__all__ = ["images", "real", "synthetic", "uploads"]
