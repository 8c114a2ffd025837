#!/usr/bin/env bash
# The main job on the embedded defaults (SQLite, in-process tasks): installs what is needed,
# then serves at http://127.0.0.1:${PORT:-8000}/ at once, while a background process
# (`manage.py prepare_demo`) computes the demo studies — one over each of MultiViz's own
# samples here (fixtures/multiviz/, and MULTIVIZ_RESULTS_DIR, default ../shared/multiviz-results),
# the engine demo of the home page, the shapes-VQA and fusion studies — and the home page shows
# its progress and each study's links as it becomes ready; the console prints them at the end.
# Ctrl-C stops both; run again, it goes on where it stopped (a second run while one prepares
# leaves that one alone).
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" runtime  # requirements.txt only, no test tools
URL="http://127.0.0.1:${PORT:-8000}"
python manage.py migrate --noinput
python manage.py prepare_demo --background --base-url "$URL" &
echo "==> serving on $URL/  (the demo's studies are being prepared: follow them there; Ctrl-C stops)"
# migrate ran the system checks; no reloader process: the first answer comes seconds sooner
exec python manage.py runserver --noreload --skip-checks "127.0.0.1:${PORT:-8000}"
