"""The tests are one package: a helper is imported by its full name (``from tests.doubles.http import running``).

With pytest's default import mode the repository root goes on ``sys.path`` and every test module gets a unique
dotted name, so any subset of the folders collects in any order (tests/test_collection.py checks that).
"""
