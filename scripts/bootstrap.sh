# Sourced by scripts/demo.sh (`source bootstrap.sh runtime`) and scripts/test.sh
# (`source bootstrap.sh dev`): creates .venv and installs into it the pinned requirements of
# that profile plus viz_engine itself (editable, from pyproject.toml, so `import viz_engine`
# works from any directory with this venv). Each profile installs again only when a file it
# reads changes. Idempotent.
#   runtime: requirements.txt + pyproject.toml
#   dev:     requirements-dev.txt (which includes requirements.txt) + pyproject.toml
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
PROFILE="${1:-runtime}"
case "$PROFILE" in
    runtime) REQUIREMENTS=requirements.txt; CHECK="torch, django, lime, captum, viz_engine" ;;
    dev) REQUIREMENTS=requirements-dev.txt; CHECK="torch, django, lime, captum, viz_engine, pytest, playwright" ;;
    *) echo "bootstrap.sh: unknown profile '$PROFILE' (runtime or dev)" >&2; exit 2 ;;
esac
# The stamp of a profile: the digest of every file its install reads.
digest() { cat "$@" | sha256sum | cut -d' ' -f1; }
RUNTIME_WANT="$(digest requirements.txt pyproject.toml)"
if [ "$PROFILE" = dev ]; then
    WANT="$(digest requirements.txt requirements-dev.txt pyproject.toml)"
else
    WANT="$RUNTIME_WANT"
fi
STAMP="$VENV/.requirements-$PROFILE.sha256"
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
    echo "==> installing $REQUIREMENTS and viz_engine into .venv (first run only)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS" 2>&1 \
        | grep -v "is ignored: it is neither a file nor a directory" || true
    # viz_engine's own dependencies are all pinned in requirements.txt (a test checks), and
    # the setuptools that builds it came with torch: nothing more to fetch.
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT" 2>&1 \
        | grep -v "is ignored: it is neither a file nor a directory" || true
    # from another directory: the engine must import from the install, not from the checkout
    (cd / && "$VENV/bin/python" -c "import $CHECK") \
        || { echo "requirements did not install; see the messages above" >&2; exit 1; }
    echo "$WANT" > "$STAMP"
    if [ "$PROFILE" = dev ]; then
        # the dev profile installs the runtime one too: a demo after the tests installs nothing
        echo "$RUNTIME_WANT" > "$VENV/.requirements-runtime.sha256"
    fi
fi
export PATH="$VENV/bin:$PATH"
