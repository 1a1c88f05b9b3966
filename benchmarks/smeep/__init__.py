"""SMEEP: Small Model Experimentation and Evaluation Project benchmarks."""

__version__ = "0.1.0"
