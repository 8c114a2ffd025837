"""The README's "Bring your own model" example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_bring_your_own_model_example_in_readme_runs_as_written(capsys):
    text = README.read_text()
    section = text.split("## Bring your own model", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section should hold exactly one Python example"
    exec(compile(blocks[0], "README.md:bring-your-own-model", "exec"), {"__name__": "readme_example"})
    printed = capsys.readouterr().out
    assert "(2, 5) (2, 16) (2, 5, 16) (2, 16)" in printed
