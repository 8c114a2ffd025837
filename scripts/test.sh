#!/usr/bin/env bash
# The test command: installs what is needed (runtime and development requirements), then runs
# every test (slow ones included).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"` or `-k emap`.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" dev  # requirements-dev.txt: runtime + test tools
# Browser tests drive Debian's chromium through Playwright (never a downloaded browser).
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "==> installing Debian's chromium for the browser tests"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "==> /usr/bin/chromium is missing and cannot be installed here: browser tests will be skipped" >&2
    fi
fi
echo "==> database: ${DATABASE_URL:-sqlite (embedded default)}; broker: ${CELERY_BROKER_URL:-none, tasks in-process}"
python manage.py check
set +e
python -m pytest "$@"
status=$?
set -e
# pytest's "no tests collected" (5) is a failure here: a test command that tests nothing is broken.
exit $status
