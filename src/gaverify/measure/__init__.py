"""Measuring and judging: from two runs' gradients to a verdict and a diagnosis.

compare.py compares gradients and parameters (float64); fit.py fits a
diverging gradient as a weighted sum of micro-batch gradients; verdict.py
judges rows against tolerances and expectations; diagnosis.py names the
fitted weights; results.py holds the typed results every report reads.
"""
