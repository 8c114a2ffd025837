"""viz_engine is a package of its own (pyproject.toml, no Django), installed by the set-up so it
imports from any directory; runtime and development requirements are separate files."""

import ast
import json
import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("viz_engine", "config", "studies", "annotations")
DEV_TOOLS = {  # distribution -> the module it is imported as
    "pytest": "pytest",
    "pytest-django": "pytest_django",
    "hypothesis": "hypothesis",
    "schemathesis": "schemathesis",
    "playwright": "playwright",
    "httpx": "httpx",
    "aiohttp": "aiohttp",
}


def _pins(path: Path) -> dict[str, Requirement]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = req
    return pins


def test_viz_engine_imports_from_outside_the_repository_without_django():
    probe = (
        "import json, sys\n"
        "import viz_engine, viz_engine.adapters\n"
        "from viz_engine.models.shapes_vqa import weights_path\n"
        "print(json.dumps({'file': viz_engine.__file__, 'django': 'django' in sys.modules,\n"
        "                  'weights': weights_path('early').is_file()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    done = subprocess.run([sys.executable, "-c", probe], cwd="/tmp", env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(seen["file"]).parent.name == "viz_engine"
    assert seen["django"] is False and seen["weights"] is True


def test_the_engine_is_installed_editable_with_no_django_dependency():
    dist = metadata.distribution("viz-engine")
    assert json.loads(dist.read_text("direct_url.json"))["dir_info"] == {"editable": True}
    required = {canonicalize_name(Requirement(r).name) for r in dist.requires or []}
    assert "torch" in required
    assert not required & {"django", "djangorestframework", "celery"}


def test_every_dependency_of_the_engine_is_pinned_in_requirements_txt_within_its_bounds():
    # the set-up installs the engine with --no-deps: the runtime pins must cover it
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins(ROOT / "requirements.txt")
    for dep in map(Requirement, project["dependencies"]):
        pin = pins.get(canonicalize_name(dep.name))
        assert pin is not None, f"{dep.name} is a dependency of viz_engine but not in requirements.txt"
        (version,) = [s.version for s in pin.specifier]
        assert dep.specifier.contains(version), f"{pin} is outside viz_engine's {dep}"


def test_test_tools_are_development_requirements_and_the_product_never_imports_them():
    runtime = _pins(ROOT / "requirements.txt")
    dev_text = (ROOT / "requirements-dev.txt").read_text()
    dev = _pins(ROOT / "requirements-dev.txt")
    assert "-r requirements.txt" in dev_text.splitlines()
    assert set(DEV_TOOLS) <= set(dev)
    assert not set(DEV_TOOLS) & set(runtime)
    assert not set(dev) & set(runtime), "a package pinned in both files"
    dev_modules = set(DEV_TOOLS.values())
    for package in PRODUCT_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    assert name.split(".")[0] not in dev_modules, f"{path.relative_to(ROOT)} imports {name}"
