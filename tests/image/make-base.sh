#!/usr/bin/env bash
# Make a Debian bookworm root filesystem with python3 + venv (+ CA certificates), as a tarball.
#
# Usage: make-base.sh OUT.tar
#
# The image tests cannot pull python:3.12-slim (no registry is reachable from CI), so they build
# the Dockerfile FROM a base made here with debootstrap and imported with buildah
# (see build-image.sh). The result is cached by build-image.sh under /var/cache/ci-migrate/,
# keyed by a hash of this file: edit this file and the next run makes a new base.
#
# Environment:
#   DEBIAN_MIRROR   mirror to bootstrap from (default: http://deb.debian.org/debian)
set -euo pipefail

out=${1:?usage: make-base.sh OUT.tar}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
# git is left out on purpose: the Dockerfile installs it with apt-get, as on python:3.12-slim.
packages=python3,python3-venv,ca-certificates

rootfs=$(mktemp -d /var/tmp/ci-migrate-rootfs.XXXXXX)
cleanup() { rm -rf "$rootfs"; }
trap cleanup EXIT

echo "make-base: debootstrap $suite ($packages) from $mirror" >&2
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >&2

# Same trimming as the official slim images: no apt lists, docs, man pages or locales.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
       "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
       "$rootfs"/usr/share/locale/*
# Let apt work inside the image (e.g. a user's pre-command), like the slim images do.
printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
    "$mirror" "$suite" "$mirror" "$suite" "$suite" > "$rootfs/etc/apt/sources.list"

tmp="$out.tmp.$$"
tar --numeric-owner --one-file-system -C "$rootfs" -cf "$tmp" .
mv -f "$tmp" "$out"
echo "make-base: wrote $out ($(du -h "$out" | cut -f1))" >&2
