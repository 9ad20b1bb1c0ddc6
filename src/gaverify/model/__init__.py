"""The model and its optimizer: building what a scenario describes, calling it.

build.py builds a model from a config, pretrained files or a factory;
calls.py calls it as a training loop does; optim.py builds optimizers.
"""
