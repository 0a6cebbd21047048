#!/usr/bin/env bash
# Build the documentation site into site/ with `mkdocs build --strict`; the examples are
# executed during the build (they fit models to the bundled data, so a cold build spends
# a few minutes compiling). Needs: pip install -e ".[docs,plot]".
# Not part of the test suite or .ci/run: its run time is dominated by compilation.
# Uses $PYTHON (default python3: run it inside the virtual environment).
set -euo pipefail
cd "$(dirname "$0")/.."
export NO_MKDOCS_2_WARNING=1
exec "${PYTHON:-python3}" -m mkdocs build --strict "$@"
