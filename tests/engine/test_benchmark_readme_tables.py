"""The README's benchmark tables are generated from the committed JSON in benchmarks/results/."""

import re

from benchmarks.readme_tables import README, TABLES, render


def test_readme_benchmark_tables_equal_what_the_script_generates_from_the_committed_json():
    text = README.read_text()
    assert render(text) == text, "run: python -m benchmarks.readme_tables"


def test_readme_has_a_generated_block_for_every_committed_benchmark_table():
    text = README.read_text()
    marked = set(re.findall(r"<!-- benchmarks:([\w-]+) -->", text))
    assert marked and marked <= set(TABLES)
