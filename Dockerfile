# ci-migrate container image: the GitHub Action (action.yml, `runs.using: docker`) and the image
# for any other CI (`docker run -v "$PWD:/workspace" IMAGE check`).
#
# Build:      docker build -t ci-migrate .
# Behind a corporate proxy / private index (all optional; pip reads these names itself):
#             docker build --build-arg PIP_INDEX_URL=https://pypi.corp/simple \
#                          --build-arg PIP_TRUSTED_HOST=pypi.corp \
#                          --build-arg EXTRA_CA_CERTS="$(cat corp-root-ca.pem)" -t ci-migrate .
#             (PIP_CERT=/path/in/build also works where the builder can mount a file, e.g.
#              `buildah bud -v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.pem:ro
#               --build-arg PIP_CERT=/run/host-ca.pem`.)
# Other base: --build-arg BASE_IMAGE=... (any glibc image with python3 >= 3.10 and its venv
#             module; the image tests use a debootstrapped Debian bookworm, Python 3.11).
# Pinned dependencies: requirements/image.txt (hashed; regenerate with requirements/lock.sh).

ARG BASE_IMAGE=python:3.12-slim

# --------------------------------------------------------------------------- builder
FROM ${BASE_IMAGE} AS builder

ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
ARG EXTRA_CA_CERTS

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

# An extra CA (PEM text) is appended to a copy of the system bundle. pip uses it here; at run
# time entrypoint.py points SSL_CERT_FILE at it (uv and the GitHub/GitLab API calls use that).
RUN python3 -m venv /opt/venv \
    && if [ -n "${EXTRA_CA_CERTS:-}" ]; then \
         mkdir -p /opt/venv/ssl \
         && cat /etc/ssl/certs/ca-certificates.crt > /opt/venv/ssl/ca-bundle.pem \
         && printf '%s\n' "$EXTRA_CA_CERTS" >> /opt/venv/ssl/ca-bundle.pem; \
       fi

COPY requirements/image.txt /tmp/requirements.txt
# Every dependency pinned and hashed; pip refuses anything not in the file.
RUN if [ -f /opt/venv/ssl/ca-bundle.pem ]; then export PIP_CERT=/opt/venv/ssl/ca-bundle.pem; fi \
    && /opt/venv/bin/pip install --no-compile --require-hashes -r /tmp/requirements.txt

# --------------------------------------------------------------------------- tool
# ci-migrate itself goes to its own prefix, found through a .pth file, so that a change to the
# code rebuilds a layer of ~1 MB and not the whole venv.
FROM builder AS tool
# (Build args are per stage: pip needs them again for the build backend, setuptools.)
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
COPY pyproject.toml setup.py README.md /src/
COPY ci_migrate /src/ci_migrate
COPY docs/rules /src/docs/rules
RUN if [ -f /opt/venv/ssl/ca-bundle.pem ]; then export PIP_CERT=/opt/venv/ssl/ca-bundle.pem; fi \
    && /opt/venv/bin/pip install --no-compile --no-deps --target /opt/ci-migrate /src \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/ci-migrate

# --------------------------------------------------------------------------- venv
# The dependencies without pip/setuptools (uv installs users' requirements; a `pip` shim forwards
# to `uv pip`), with bytecode compiled once, here, as nothing may be written at run time.
# unchecked-hash .pyc files stay valid whatever mtimes COPY gives the sources.
FROM builder AS venv
RUN /opt/venv/bin/pip uninstall --yes setuptools pip \
    && rm -f /opt/venv/bin/pip* \
    && printf '#!/bin/sh\n# No pip in the ci-migrate venv: uv installs into it (VIRTUAL_ENV=/opt/venv).\nexec uv pip "$@"\n' \
         > /opt/venv/bin/pip \
    && chmod 0755 /opt/venv/bin/pip \
    && ln -s pip /opt/venv/bin/pip3 \
    && ln -s /opt/ci-migrate/bin/ci-migrate /opt/venv/bin/ci-migrate \
    && /opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))' > /tmp/purelib \
    && echo /opt/ci-migrate > "$(cat /tmp/purelib)/ci_migrate_tool.pth" \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
         -x '/(tests?|testing|lexers)/' /opt/venv/lib

# --------------------------------------------------------------------------- runtime
FROM ${BASE_IMAGE}

# No USER line: GitHub runs container actions as root (and passes no --user).
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never

# git: the base-branch comparison on pull requests (git ls-tree / cat-file / merge-base) and
# users' `git+https://` requirements. Skipped when the base image already has it.
RUN if ! command -v git >/dev/null 2>&1; then \
      apt-get update \
      && apt-get install -y --no-install-recommends git \
      && apt-get clean \
      && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log; \
    fi

COPY --from=venv /opt/venv /opt/venv
COPY --from=tool /opt/ci-migrate /opt/ci-migrate
COPY entrypoint.py /app/entrypoint.py

# For `docker run -v "$PWD:/workspace" IMAGE check`; GitHub overrides it with /github/workspace.
WORKDIR /workspace

ENTRYPOINT ["python", "/app/entrypoint.py"]

# Last, so a new revision does not invalidate the cached layers above.
ARG IMAGE_VERSION=dev
ARG IMAGE_REVISION=unknown
ARG IMAGE_SOURCE=https://github.com/ci-migrate/ci-migrate

LABEL org.opencontainers.image.title="ci-migrate" \
      org.opencontainers.image.description="CI checks and safe upgrades for Flask-Migrate (Alembic) migrations" \
      org.opencontainers.image.source="${IMAGE_SOURCE}" \
      org.opencontainers.image.url="${IMAGE_SOURCE}" \
      org.opencontainers.image.documentation="${IMAGE_SOURCE}/blob/main/docs/ci-recipes.md" \
      org.opencontainers.image.version="${IMAGE_VERSION}" \
      org.opencontainers.image.revision="${IMAGE_REVISION}" \
      org.opencontainers.image.licenses="MIT"

