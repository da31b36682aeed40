#!/usr/bin/env bash
# Builds the HTML documentation into docs/_build/html, and fails on any error or broken
# reference:
#   1. antsibull-docs renders every module's DOCUMENTATION/EXAMPLES/RETURN, the filter's and
#      every role's meta/argument_specs.yml to RST (an invalid one is an error here)
#   2. docs/build.py adds a page per playbook, the AWX objects and the "runbook section ->
#      playbook" table, after checking every section and every path
#   3. sphinx-build -n -W: an unresolved reference or any warning fails the build
#
#   docs/build.sh        (after scripts/setup --dev)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$root/ansible.cfg"

out=docs/_build
rm -rf "$out"
mkdir -p "$out/rst"
chmod 700 "$out/rst"   # antsibull-docs writes only into a directory no one else can write to

echo "docs: antsibull-docs (modules, plugins, roles)"
if ! antsibull-docs --config-file docs/antsibull-docs.cfg collection --use-current --cleanup everything \
    --dest-dir "$out/rst" oncall.runbooks >"$out/antsibull.log" 2>&1; then
    cat "$out/antsibull.log" >&2
    echo "docs: antsibull-docs failed" >&2
    exit 1
fi
if grep -E '^ERROR|did not return correct DOCUMENTATION' "$out/antsibull.log" >&2; then
    echo "docs: invalid plugin or role documentation (above)" >&2
    exit 1
fi

echo "docs: pages from awx/catalog.yml and docs/runbook_sections.yml"
python docs/build.py "$out/rst"

echo "docs: sphinx-build"
sphinx-build -q -b html -c docs -n -W --keep-going "$out/rst" "$out/html"
echo "docs: built $out/html/index.html"
