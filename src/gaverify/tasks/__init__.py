"""Tasks: the model heads gaverify trains, their samples, summed losses and counted items.

heads.py declares each task (its Auto class, how a sample looks, what a
counted item is); losses.py computes each kind of summed loss and count.
"""
