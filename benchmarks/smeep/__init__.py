"""SMEEP: Small Model Experimentation and Evaluation Project benchmarks."""
