# toolkit-base-python:3.11: the Debian base (toolkit-base-debian:bookworm, made by
# images/base/build.sh with debootstrap) + bookworm's python3 (3.11) and python3-venv.
# With a registry, python:3.11-slim serves the same purpose.
ARG BASE_IMAGE=toolkit-base-debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/log/*.log /var/cache/debconf/*-old /var/lib/dpkg/*-old /usr/share/doc/* /usr/share/man/*
LABEL org.opencontainers.image.title="toolkit-base-python" \
      org.opencontainers.image.description="Debian bookworm minbase + ca-certificates + python3 (3.11) and python3-venv, made by images/base/build.sh"
CMD ["python3"]
