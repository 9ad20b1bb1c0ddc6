"""Accumulation: every rule that turns micro-batches into a loss.

rules.py holds each normalisation rule as per-micro-batch weights (naive,
fixed, and the data-parallel ones); variants.py the reference backend's
variants (the rules, plus code of transformers or of the user); the other
modules the variants each engine understands (the Trainer, DDP, Lightning)
and the loss_type route through transformers' LOSS_MAPPING.
"""
