"""The README's "Bring your own model" example runs as written, in the repository and outside it."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> str:
    text = README.read_text()
    section = text.split("## Bring your own model", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section should hold exactly one Python example"
    return blocks[0]


def test_bring_your_own_model_example_in_readme_runs_as_written(capsys):
    exec(compile(_example(), "README.md:bring-your-own-model", "exec"), {"__name__": "readme_example"})
    printed = capsys.readouterr().out
    assert "(2, 5) (2, 16) (2, 5, 16) (2, 16)" in printed


@pytest.mark.slow
def test_bring_your_own_model_example_runs_from_a_folder_outside_the_repository(tmp_path):
    # what a user does: save the snippet in their own folder and run it with the set-up's python
    script = tmp_path / "my_model.py"
    script.write_text(_example())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(2, 5) (2, 16) (2, 5, 16) (2, 16)" in done.stdout
