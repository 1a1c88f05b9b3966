"""Test doubles shared by the tests, the benchmarks and Molecule: fake engines and providers speaking the real
protocols (in a test process), and the node doubles under :mod:`tests.doubles.node` (run on a Molecule node)."""
