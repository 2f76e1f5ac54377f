"""Offline WAM training on ``wam generate`` datasets.

- ``sequences.py``: :class:`SequenceTable` (a dataset's steps in memory) and :class:`Sequences` (a batch of windows);
- ``objectives.py``: the world-model (multi-step autoregressive), joint and cascaded losses;
- ``trainer.py``: :class:`Trainer` (epochs, validation k-step errors, TensorBoard, checkpoints, exact resume);
- ``checkpoint.py``: atomic writes, weights-only reads;
- ``config.py``: :class:`TrainModelCfg`; ``run.py``: set-up from a config, :func:`load_model`.
"""
