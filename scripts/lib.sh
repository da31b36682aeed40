# shellcheck shell=bash
# Helpers shared by scripts/setup and scripts/test. Sourced, never executed.

# Repository root: the directory above scripts/.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC2034  # used by the scripts that source this file
VENV="$ROOT/.venv"

# Messages go to stderr-free stdout so CI logs keep their order.
_tag="${0##*/}"
say() { printf '%s: %s\n' "$_tag" "$*"; }
skip() { printf '%s: %s (skipped: %s)\n' "$_tag" "$1" "$2"; }
die() { printf '%s: error: %s\n' "$_tag" "$*" >&2; exit 1; }

# now: seconds since the epoch with microseconds (bash >= 5).
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }

# elapsed START: seconds since START, one decimal.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# sha256 of the given files' contents and names (a missing file adds only its name).
hash_files() {
    local f
    for f in "$@"; do
        [[ -f "$f" ]] && cat "$f"
        printf '\0%s\0' "$f"
    done | sha256sum | cut -d' ' -f1
}
