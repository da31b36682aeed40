#!/usr/bin/env bash
# Build the images the Molecule scenarios run, without any registry:
#
#   base  Debian bookworm (debootstrap minbase) with python3, imported with `docker import`
#   app   base + redis-server, PostgreSQL 15, Node.js, the lab (lab/) with its node_modules,
#         and a virtualenv at /opt/oncall/venv with the modules' Python libraries (constraints.txt)
#   systemd  base + systemd as PID 1 (the services role's systemd backend, molecule/services_systemd);
#         generic: the scenario writes its own units
#
# Each image is tagged with a hash of what it is built from (oncall-runbooks/molecule-<name>:<hash>)
# and reused while that hash exists. The scenarios run the image named by ONCALL_MOLECULE_IMAGE
# (scripts/test sets it to this checkout's app hash tag, from --print-image), so two checkouts
# with different recipes on one machine each run their own image. Without that variable (a bare
# `molecule test`), they run :current, which this script then points at this checkout's image.
# Hash tags of other recipes are removed once they are over a day old and no container uses them
# (a younger one may belong to another checkout's run).
#
#   molecule/images/build.sh                 build what is missing, print the timings
#   molecule/images/build.sh --print-image   print this checkout's app image reference; build nothing
#   molecule/images/build.sh --print-image systemd   the same for the systemd image
#                                            (ONCALL_MOLECULE_SYSTEMD_IMAGE, :current when unset)
#   molecule/images/build.sh --print-image base      the same for the base image (what the
#                                            services_docker scenario builds its app images on)
#   DEBIAN_MIRROR=http://...                 the mirror for debootstrap (default: the one apt uses here)
#
# Needs a running dockerd, debootstrap, root (debootstrap), and lab/node/node_modules
# (scripts/setup installs it).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
REPO=oncall-runbooks/molecule
SUITE=bookworm
# Docker 20.10's legacy builder: BuildKit would need the buildx plugin, which is not installed.
export DOCKER_BUILDKIT=0

say() { printf 'images: %s\n' "$*"; }
die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
exists() { docker image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror apt uses on this machine (deb822 or one-line sources), else deb.debian.org.
apt_mirror() {
    local m
    m="$(awk 'tolower($1) == "uris:" { uri = $2 } tolower($1) == "suites:" && / '"$SUITE"'( |$)/ && uri !~ /security/ { print uri; exit }' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
    [[ -n "$m" ]] || m="$(awk '$1 == "deb" && $3 == "'"$SUITE"'" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)"
    printf '%s' "${m:-http://deb.debian.org/debian}"
}

print_image=""
case "${1:-}" in
    --print-image)
        print_image="${2:-app}"
        [[ "$print_image" =~ ^(app|systemd|base)$ ]] || die "unknown image '$print_image' (app, systemd or base)"
        ;;
    "") ;;
    *) die "unknown argument '$1' (only --print-image [app|systemd|base])" ;;
esac

work="$(mktemp -d "${TMPDIR:-/tmp}/oncall-images.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --- base: debootstrap + docker import ----------------------------------------------------
build_base() { # build_base TAG
    local rootfs="$work/rootfs" mirror
    mirror="${DEBIAN_MIRROR:-$(apt_mirror)}"
    say "debootstrap $SUITE (minbase, python3) from $mirror"
    debootstrap --variant=minbase --include=python3 "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
    # Packages installed in later layers must not start their services at build time.
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" --numeric-owner -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["bash"]' \
        - "$1" >/dev/null
}

# --- app: docker build on top of base --------------------------------------------------------
build_app() { # build_app TAG BASE_TAG
    local ctx="$work/app"
    mkdir -p "$ctx/lab"
    # The modules' libraries at the versions the tests run with (constraints.txt); not ansible
    # itself: the controller runs Ansible, the container only runs modules.
    grep -vE '^(ansible|ansible-core)==' "$ROOT/constraints.txt" >"$ctx/requirements.txt"
    # This machine's CA bundle, so that pip in the build trusts what pip on the host trusts.
    cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$ctx/ca.crt"
    # node_modules comes from the checkout (installed by scripts/setup from package-lock.json):
    # faster than an npm install in the image, and the same versions the tests use.
    (cd "$ROOT/lab" && tar -c .) | tar -C "$ctx/lab" -x
    # The build fetches from Debian's mirror and PyPI; there is no bridge, so host network.
    docker build --force-rm --network host --build-arg "BASE=$2" -t "$1" -f "$HERE/app.Dockerfile" "$ctx" >"$work/build.log" 2>&1 ||
        { tail -n 20 "$work/build.log" >&2; die "docker build failed (log above)"; }
}

# --- systemd: base + systemd as PID 1 ---------------------------------------------------------
# Run with --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:ro and the command
# /lib/systemd/systemd (no --privileged). Units that need a network or a console are masked.
build_systemd() { # build_systemd TAG BASE_TAG
    local ctx="$work/systemd"
    mkdir -p "$ctx"
    cat >"$ctx/Dockerfile" <<'DOCKERFILE'
ARG BASE
FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends systemd systemd-sysv \
 && rm -rf /var/lib/apt/lists/* \
 && systemctl mask getty.target console-getty.service systemd-logind.service \
      systemd-networkd.service systemd-resolved.service systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer
STOPSIGNAL SIGRTMIN+3
CMD ["/lib/systemd/systemd"]
DOCKERFILE
    docker build --force-rm --network host --build-arg "BASE=$2" -t "$1" "$ctx" >"$work/build-systemd.log" 2>&1 ||
        { tail -n 20 "$work/build-systemd.log" >&2; die "docker build of the systemd image failed (log above)"; }
}

# --- hashes, build, tags ----------------------------------------------------------------------
# A recipe is the function that builds it plus its inputs: `declare -f` prints the function's
# code, so editing a recipe changes the hash and rebuilds that image (and those above it).
hash_of() { sha256sum | cut -c1-12; }
lab_files() { (cd "$ROOT" && find lab -path lab/node/node_modules -prune -o -type f -print | LC_ALL=C sort); }

base_hash="$({ echo "$SUITE"; declare -f build_base; } | hash_of)"
base_tag="$REPO-base:$base_hash"
if [[ "$print_image" == base ]]; then
    printf '%s\n' "$base_tag"
    exit 0
fi
# npm writes node_modules/.package-lock.json (often in the same instant as the lock itself);
# older than the lock means node_modules is stale.
[[ -f "$ROOT/lab/node/node_modules/.package-lock.json" && ! "$ROOT/lab/node/node_modules/.package-lock.json" -ot "$ROOT/lab/node/package-lock.json" ]] ||
    die "lab/node/node_modules is missing or older than package-lock.json: run scripts/setup"
app_hash="$({
    echo "$base_tag"
    declare -f build_app
    cat "$HERE/app.Dockerfile" "$ROOT/constraints.txt"
    lab_files | while read -r f; do printf '%s\0' "$f"; cat "$ROOT/$f"; done
} | hash_of)"
app_tag="$REPO-app:$app_hash"
systemd_hash="$({ echo "$base_tag"; declare -f build_systemd; } | hash_of)"
systemd_tag="$REPO-systemd:$systemd_hash"
case "$print_image" in
    app) printf '%s\n' "$app_tag"; exit 0 ;;
    systemd) printf '%s\n' "$systemd_tag"; exit 0 ;;
esac
if [[ -n "${ONCALL_MOLECULE_IMAGE:-}" && "$ONCALL_MOLECULE_IMAGE" != "$app_tag" ]]; then
    die "ONCALL_MOLECULE_IMAGE is $ONCALL_MOLECULE_IMAGE but this checkout builds $app_tag: unset it, or set it from --print-image"
fi
if [[ -n "${ONCALL_MOLECULE_SYSTEMD_IMAGE:-}" && "$ONCALL_MOLECULE_SYSTEMD_IMAGE" != "$systemd_tag" ]]; then
    die "ONCALL_MOLECULE_SYSTEMD_IMAGE is $ONCALL_MOLECULE_SYSTEMD_IMAGE but this checkout builds $systemd_tag: unset it, or set it from --print-image systemd"
fi

ensure() { # ensure NAME TAG BUILD_ARGS...: build TAG unless it exists
    local name="$1" tag="$2" t
    shift 2
    if exists "$tag"; then
        say "$name: $tag (cached)"
        return
    fi
    t="$(now)"
    "build_$name" "$tag" "$@"
    say "$name: $tag built in $(elapsed "$t")s"
}

drop_old() { # drop_old NAME KEEP_TAG: untag this repository's other hashes over a day old (children first)
    local old created day_ago
    day_ago="$(date -u -d '1 day ago' +%s)"
    for old in $(docker image ls --format '{{.Repository}}:{{.Tag}}' "$REPO-$1"); do
        [[ "$old" == "$2" || "$old" == *:current ]] && continue
        created="$(date -u -d "$(docker image inspect -f '{{.Created}}' "$old")" +%s 2>/dev/null || echo 0)"
        ((created < day_ago)) || continue
        docker image rm "$old" >/dev/null 2>&1 || say "kept $old: a container still uses it"
    done
}

start="$(now)"
ensure base "$base_tag"
ensure app "$app_tag" "$base_tag"
ensure systemd "$systemd_tag" "$base_tag"
if [[ -z "${ONCALL_MOLECULE_IMAGE:-}" ]]; then
    docker tag "$app_tag" "$REPO-app:current"
    say "$REPO-app:current -> $app_tag (ONCALL_MOLECULE_IMAGE is not set)"
fi
if [[ -z "${ONCALL_MOLECULE_SYSTEMD_IMAGE:-}" ]]; then
    docker tag "$systemd_tag" "$REPO-systemd:current"
    say "$REPO-systemd:current -> $systemd_tag (ONCALL_MOLECULE_SYSTEMD_IMAGE is not set)"
fi
drop_old app "$app_tag"
drop_old systemd "$systemd_tag"
drop_old base "$base_tag"
say "$app_tag ready in $(elapsed "$start")s"
