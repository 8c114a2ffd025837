"""The import contracts of ``.importlinter`` (the engine imports no Django, the apps depend
one way, web code never imports torch) hold, and they would catch a change that broke them."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("viz_engine", "studies", "annotations", "config")
CONTRACTS = {
    "engine": "viz_engine imports no Django and nothing of the platform",
    "layers": "the apps depend one way",
    "web": "what the web process serves never imports torch",
}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` over the packages found in ``cwd``, with its ``.importlinter``."""
    command = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(command if command.exists() else shutil.which("lint-imports")), "--no-cache",
                           "--config", str(cwd / ".importlinter")],
                          cwd=cwd, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)},
                          capture_output=True, text=True, timeout=300)


def _python_only(folder, names):
    """copytree's ``ignore``: every file but Python source (weights, data, caches)."""
    return [n for n in names if not (Path(folder, n).is_dir() or n.endswith(".py")) or n == "__pycache__"]


def test_the_repository_keeps_every_import_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in CONTRACTS.values():
        assert name in " ".join(result.stdout.split()), result.stdout
    assert "0 broken" in result.stdout


def test_the_contracts_break_on_a_planted_reverse_import_torch_in_a_view_and_django_in_the_engine(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=_python_only)
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")

    def plant(path: str, code: str) -> None:
        with open(tmp_path / path, "a", encoding="utf-8") as f:
            f.write("\n\n" + code + "\n")

    # hidden inside a function, as imports that dodge a cycle were: still an import
    plant("viz_engine/bundles/format.py", "def _planted():\n    import django  # noqa: F401")
    plant("studies/services.py", "from annotations.models import Response  # noqa: E402,F401")
    plant("annotations/views.py", "from viz_engine.bundles import precompute  # noqa: E402,F401  (it reaches torch)")

    result = lint_imports(tmp_path)
    out = " ".join(result.stdout.split())
    assert result.returncode != 0, out
    for name in CONTRACTS.values():
        assert f"{name}" in out
    assert "3 broken" in out, out
    assert "viz_engine.bundles.format -> django" in out
    assert "studies.services -> annotations.models" in out
    assert "annotations.views is not allowed to import torch" in out
    assert "annotations.views -> viz_engine.bundles.precompute" in out
