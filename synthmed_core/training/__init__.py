"""Training: turn a run spec into a trained model and its test predictions.

- ``train.train_run``: the classifier loop (phases, checkpoint picked on val, test scored once);
- ``pretrain.pretrain_chestmnist``: our own ChestMNIST pretraining (init ``chestmnist``);
- ``loop``: the primitives both share (device-resident data, batched preprocessing, one epoch);
- ``compose``: the data of every phase (real, synthetic, duplicates) from a spec;
- ``models``: timm architectures and initialisations; ``checkpoints``: weights-only files;
- ``augment``: on-device augmentation; ``events``: what the loop emits (it knows no database);
- ``console``: progress bars for those events on a terminal;
- ``context``: where a run was computed (device, threads, versions, commit).

Nothing is imported here: ``from synthmed_core.training import events`` loads no torch.
"""
__all__ = ["augment", "checkpoints", "compose", "context", "events", "loop", "models",
           "pretrain", "progress", "console", "train"]
