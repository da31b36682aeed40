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

# apt_get ARGS...: apt-get ARGS, waiting up to APT_LOCK_TIMEOUT seconds (default 300) while
# another apt or dpkg run holds a package lock, then one sentence instead of apt's raw error.
# apt waits for the dpkg lock itself (DPkg::Lock::Timeout), but `apt-get update` does not wait
# for the lists lock: a failure on a lock is retried until the time is up.
apt_get() {
    local limit="${APT_LOCK_TIMEOUT:-300}" deadline left wait=0 err rc h holder="" said=0
    deadline=$((${EPOCHREALTIME/[.,]/} + limit * 1000000)) # microseconds
    err="$(mktemp)"
    while :; do
        # The first try does not wait, so that the wait is announced with who holds the lock.
        apt-get -o "DPkg::Lock::Timeout=$wait" "$@" 2>"$err"
        rc=$?
        if ! grep -qE 'Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock' "$err"; then
            grep -v '^Waiting for cache lock' "$err" >&2
            rm -f "$err"
            return "$rc"
        fi
        # apt names the holder when it does not wait ("It is held by process N (name)")
        h="$(sed -n 's/.*It is held by process \([0-9]*\) (\([^)]*\)).*/\2, pid \1/p' "$err" | head -n1)"
        [[ -n "$h" ]] && holder="$h"
        left=$((deadline - ${EPOCHREALTIME/[.,]/}))
        wait=$((left / 1000000))
        if ((left <= 0)); then
            rm -f "$err"
            die "another apt or dpkg run${holder:+ ($holder)} held the package lock for all of ${limit}s: let it finish, then run scripts/setup again (APT_LOCK_TIMEOUT=<seconds> waits longer)"
        fi
        ((said)) || say "waiting up to ${limit}s for the package lock${holder:+ held by $holder} (another apt or dpkg run)"
        said=1
        sleep 1
    done
}
