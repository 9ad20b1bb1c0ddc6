"""gaverify: is gradient-accumulated training really equivalent to full-batch training?"""

__version__ = "0.1.0"
