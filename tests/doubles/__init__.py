"""Test doubles shared by the tests and the benchmarks: fake engines and providers speaking the real protocols."""
