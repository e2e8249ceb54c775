#!/usr/bin/env bash
# Build the ci-migrate image with buildah, FROM a Debian bookworm base made locally.
#
# Usage: tests/image/build-image.sh [TAG]          (default TAG: localhost/ci-migrate:test)
#
# No registry can be pulled from in CI, so python:3.12-slim is replaced by a base that
# make-base.sh debootstraps (python3 + venv, Python 3.11). Its tarball is cached under
# $CI_MIGRATE_IMAGE_CACHE (default /var/cache/ci-migrate), keyed by a hash of make-base.sh, and
# imported as localhost/ci-migrate-base:<key> once per buildah storage. `buildah bud --layers`
# reuses the dependency layer while requirements/image.txt is unchanged.
#
# pip inside the build reaches PyPI the way this host does: the host's CA bundle is mounted
# and passed as PIP_CERT, and an http(s) index-url / extra-index-url from the host's pip
# configuration (env or pip.conf) is passed on as build args (file:// ones are skipped).
#
# Needs: buildah, debootstrap (apt-get install -y buildah debootstrap), root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tag=${1:-localhost/ci-migrate:test}
cache=${CI_MIGRATE_IMAGE_CACHE:-/var/cache/ci-migrate}
export BUILDAH_ISOLATION=chroot

key=$(sha256sum "$here/make-base.sh" | cut -c1-16)
base_tar=$cache/base-bookworm-$key.tar
base_image=localhost/ci-migrate-base:$key
log() { echo "build-image: $*" >&2; }

mkdir -p "$cache"
if ! buildah inspect --type image "$base_image" >/dev/null 2>&1; then
    (
        flock 9
        if [ ! -s "$base_tar" ]; then
            log "making base rootfs $base_tar (debootstrap, ~2 min)"
            "$here/make-base.sh" "$base_tar"
            find "$cache" -maxdepth 1 -name 'base-bookworm-*.tar' ! -name "$(basename "$base_tar")" -delete
        fi
    ) 9>"$cache/.lock"
    log "importing $base_tar as $base_image"
    ctr=$(buildah from --quiet scratch)
    trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
    buildah add --quiet "$ctr" "$base_tar" / >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd python3 "$ctr"
    buildah commit --quiet --rm "$ctr" "$base_image" >/dev/null
    trap - EXIT
    # Bases made by an older make-base.sh are no use any more.
    buildah images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/ci-migrate-base:' \
        | grep -v ":$key\$" | xargs -r buildah rmi -f >/dev/null 2>&1 || true
fi

build_args=(--build-arg "BASE_IMAGE=$base_image")
volumes=()
cert=${PIP_CERT:-$(pip config get global.cert 2>/dev/null || true)}
cert=${cert:-/etc/ssl/certs/ca-certificates.crt}
if [ -f "$cert" ]; then
    volumes+=(-v "$(readlink -f "$cert"):/run/host-ca.pem:ro")
    build_args+=(--build-arg PIP_CERT=/run/host-ca.pem)
fi
index=${PIP_INDEX_URL:-$(pip config get global.index-url 2>/dev/null || true)}
case $index in http://*|https://*) build_args+=(--build-arg "PIP_INDEX_URL=$index") ;; esac
extra=""
for url in ${PIP_EXTRA_INDEX_URL:-$(pip config get global.extra-index-url 2>/dev/null || true)}; do
    case $url in http://*|https://*) extra="${extra:+$extra }$url" ;; esac
done
[ -n "$extra" ] && build_args+=(--build-arg "PIP_EXTRA_INDEX_URL=$extra")
trusted=${PIP_TRUSTED_HOST:-$(pip config get global.trusted-host 2>/dev/null || true)}
[ -n "$trusted" ] && build_args+=(--build-arg "PIP_TRUSTED_HOST=$trusted")

log "building $tag FROM $base_image"
previous=$(buildah images --quiet --no-trunc "$tag" 2>/dev/null || true)
start=$(date +%s)
buildah bud --quiet --isolation chroot --layers --force-rm "${volumes[@]}" "${build_args[@]}" \
    --build-arg "IMAGE_REVISION=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)" \
    --build-arg "IMAGE_VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$repo/ci_migrate/__init__.py")" \
    -f "$repo/Dockerfile" -t "$tag" "$repo" >&2
log "built $tag in $(( $(date +%s) - start ))s"
# Drop the image this tag pointed to before (its cached parent layers stay for the next build).
current=$(buildah images --quiet --no-trunc "$tag")
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
    buildah rmi "$previous" >/dev/null 2>&1 || true
fi
