# syntax=docker/dockerfile:1
# Container image of the price oracle: the four service binaries
# (oracle-fetchers, oracle-aggregator, oracle-bff, oracle-deploy) and config/,
# run as a non-root user. One image serves every service; each compose service
# or Kubernetes workload picks its binary as the command. See docs/deployment.md.
#
#   DOCKER_BUILDKIT=1 docker build -t price-oracle:0.1.0 .
#
# Linted by scripts/check-deploy.sh (hadolint, settings in .hadolint.yaml).

# ---- build ------------------------------------------------------------------
# The toolchain the project is built and tested with (the workspace's
# rust-version is the minimum). Bookworm, like the runtime stage, so the
# binaries' glibc matches.
FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target directories are BuildKit caches, so a rebuild only
# recompiles what changed; the binaries are copied out of the cache in the same
# step (a cache mount is not part of the image).
RUN --mount=type=cache,id=oracle-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=oracle-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=oracle-target,target=/src/target,sharing=locked \
    cargo build --release --locked --bins \
        -p oracle-fetchers -p oracle-aggregator -p oracle-bff -p oracle-deploy \
    && mkdir -p /out \
    && cp target/release/oracle-fetchers target/release/oracle-aggregator \
          target/release/oracle-bff target/release/oracle-deploy /out/

# ---- runtime ----------------------------------------------------------------
# Debian 12 slim, pinned by its dated tag; bump it (and rebuild) for security
# updates. The binaries need only glibc, libgcc and the CA certificates.
FROM debian:bookworm-20260803-slim AS runtime

LABEL org.opencontainers.image.title="price-oracle" \
      org.opencontainers.image.description="Multi-source price oracle: fetchers, aggregator node, bff, deployer" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed uid/gid (10001) so that secret files and volumes can be owned by it
# on the host (compose) and matched by runAsUser/fsGroup (Kubernetes).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 oracle \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin oracle

COPY --from=build /out/ /usr/local/bin/
# The compose healthcheck (no curl in the image): oracle-probe PORT PATH.
COPY --chmod=0755 deploy/docker/oracle-probe /usr/local/bin/oracle-probe
# config/dev-nodes.toml (anvil's public test keys) is kept out by .dockerignore.
COPY config/ /etc/oracle/config/

# Every binary reads ORACLE_CONFIG (or --config); ORACLE__… variables override
# single keys (README, "Configuration"). Secrets come from the environment or
# files (`file:/run/secrets/…`), never from this image.
ENV ORACLE_CONFIG=/etc/oracle/config/default.toml

USER 10001:10001
# Relative --config paths (config/dev.toml) resolve here; nothing is written.
WORKDIR /etc/oracle

# 8080: bff client API; metrics, /healthz and /readyz: 9101 fetchers,
# 9102 aggregator node, 9103 bff.
EXPOSE 8080 9101 9102 9103

# No entrypoint: the command names the service, e.g. ["oracle-aggregator"].
# No HEALTHCHECK either: the same image runs four services on four ports, so
# compose (oracle-probe) and Kubernetes (httpGet probes) define it per service.
CMD ["oracle-fetchers", "--help"]
