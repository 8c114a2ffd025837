#!/usr/bin/env bash
# The main job on the embedded defaults (SQLite, in-process tasks): installs what is
# needed, computes the engine demo and the demo studies (plus one study over each of MultiViz's
# own samples: fixtures/multiviz/, and MULTIVIZ_RESULTS_DIR, default ../shared/multiviz-results,
# when there) and serves them at http://127.0.0.1:${PORT:-8000}/.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" runtime  # requirements.txt only, no test tools
python manage.py migrate --noinput
python manage.py engine_demo
python manage.py demo_study --base-url "http://127.0.0.1:${PORT:-8000}"
echo "==> serving on http://127.0.0.1:${PORT:-8000}/  (Ctrl-C stops)"
exec python manage.py runserver "127.0.0.1:${PORT:-8000}"
