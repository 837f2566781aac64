"""Training: turn a run spec into a trained model and its test predictions.

- ``train.train_run``: the classifier loop (phases, checkpoint picked on val, test scored once);
- ``pretrain.pretrain_chestmnist``: our own ChestMNIST pretraining (init ``chestmnist``);
- ``loop``: the primitives both share (device-resident data, batched preprocessing, one epoch);
- ``compose``: the data of every phase (real, synthetic, duplicates) from a spec;
- ``models``: timm architectures and initialisations; ``checkpoints``: weights-only files;
- ``augment``: on-device augmentation; ``console``: progress bars for the events the loop
  emits (``records.events``: it knows no database) on a terminal.

Nothing is imported here.
"""
__all__ = ["augment", "checkpoints", "compose", "console", "epochs", "loop", "models",
           "pretrain", "progress", "train"]
