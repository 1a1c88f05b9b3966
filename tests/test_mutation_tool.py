"""tools/mutation.py: which surviving mutants count as equivalent (the letter case of SQL text) and which do not."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools/mutation.py"
_spec = importlib.util.spec_from_file_location("mutation_tool", TOOL)
assert _spec is not None and _spec.loader is not None
mutation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mutation)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('"SELECT content FROM messages WHERE id = ?"', '"select content from messages where id = ?"'),
        ('"GROUP BY client, provider ORDER BY client"', '"GROUP BY CLIENT, PROVIDER ORDER BY CLIENT"'),
        ('    "INSERT INTO retired_spend (provider) "', '    "insert into retired_spend (provider) "'),
    ],
)
def test_the_case_of_sql_text_is_equivalent(before, after):
    assert mutation.is_sql_case_change(before, after)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('status: str = "complete",', 'status: str = "COMPLETE",'),  # a value, not SQL
        ("\"AND status = 'partial' AND x = 1\"", "\"and status = 'PARTIAL' and x = 1\""),  # a value inside SQL
        ('"SELECT content FROM messages"', '"XXSELECT content FROM messagesXX"'),  # not only the case
        ('"SELECT 1"', '"SELECT 1"'),  # no change at all
    ],
)
def test_other_survivors_stay_counted(before, after):
    assert not mutation.is_sql_case_change(before, after)


def test_a_diff_is_read_as_lines_taken_and_put():
    shown = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-    a = 1\n+    a = 2\n"
    assert mutation._changed_lines(shown) == (["    a = 1"], ["    a = 2"])
