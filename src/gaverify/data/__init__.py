"""Data: where a scenario's samples come from and how they become tensors.

sources.py picks the samples of every step from a source (synthetic.py,
text.py), collate.py pads or packs them into model-ready micro-batches.
"""
