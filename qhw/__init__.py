"""qhw: run the quantum stage of a hybrid classifier on real quantum hardware."""

__version__ = "0.1.0"
