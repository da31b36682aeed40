#!/usr/bin/env bash
# Builds the HTML documentation into docs/_build/html, and fails on any error or broken
# reference:
#   1. antsibull-docs renders every module's DOCUMENTATION/EXAMPLES/RETURN, the filter's and
#      every role's meta/argument_specs.yml to RST (an invalid one is an error here), and the
#      guides of docs/docsite/rst/ listed in docs/docsite/extra-docs.yml (linted first)
#   2. docs/build.py adds a page per playbook, the AWX objects, the "runbook section ->
#      playbook" table (from docs/runbook_sections.yml; compared with the source runbooks only
#      where $ONCALL_RUNBOOK_SOURCES names them) and the reference notes docs/*.md
#   3. sphinx-build -n -W: an unresolved reference or any warning fails the build
#
#   bash docs/build.sh        (after scripts/setup --dev; needs nothing outside the repository)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
[[ -d "$root/.venv/bin" ]] && export PATH="$root/.venv/bin:$PATH"
[[ -f "$root/ansible.cfg" ]] && export ANSIBLE_CONFIG="$root/ansible.cfg"

# The tools: antsibull-docs, Sphinx with the Ansible theme and extension, PyYAML, and this
# collection on Ansible's collection path (the checkout's .collections link).
missing=()
for tool in antsibull-docs sphinx-build python; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]} == 0)); then
    python -c 'import yaml, sphinx_antsibull_ext, sphinx_ansible_theme' >/dev/null 2>&1 \
        || missing+=("the Python packages sphinx-ansible-theme, antsibull-docs (sphinx_antsibull_ext), PyYAML")
fi
[[ -e "$root/.collections/ansible_collections/oncall/runbooks/galaxy.yml" ]] \
    || missing+=("the link .collections/ansible_collections/oncall/runbooks to the checkout")
if ((${#missing[@]})); then
    printf 'docs: missing %s\n' "${missing[@]}" >&2
    echo "docs: run scripts/setup --dev (it installs the documentation tools into .venv and links the collection)" >&2
    exit 1
fi

out=docs/_build
rm -rf "$out"
mkdir -p "$out/rst"
chmod 700 "$out/rst"   # antsibull-docs writes only into a directory no one else can write to

echo "docs: antsibull-docs lint-collection-docs (docs/docsite)"
if ! antsibull-docs lint-collection-docs --no-plugin-docs --check-extra-docs-refs . >"$out/lint.log" 2>&1; then
    cat "$out/lint.log" >&2
    echo "docs: the guides of docs/docsite are invalid (above)" >&2
    exit 1
fi

echo "docs: antsibull-docs (modules, plugins, roles, guides)"
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
