"""Real images in: the MedMNIST files, validated (``real``), and uploaded files decoded
(``uploads``: PNG, JPEG, DICOM, with limits checked before decoding)."""
__all__ = ["real", "uploads"]
