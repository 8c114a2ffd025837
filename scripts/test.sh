#!/usr/bin/env bash
# The test command: installs what is needed, then runs every test (slow ones included).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"` or `-k emap`.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
echo "==> database: ${DATABASE_URL:-sqlite (embedded default)}; broker: ${CELERY_BROKER_URL:-none, tasks in-process}"
python manage.py check
set +e
python -m pytest "$@"
status=$?
set -e
# pytest's "no tests collected" (5) is a failure here: a test command that tests nothing is broken.
exit $status
