# syntax=docker/dockerfile:1
#
# callhome-gateway container image.
#
#   docker build -t callhome-gateway \
#     --build-arg VERSION="$(node -p "require('./package.json').version")" \
#     --build-arg REVISION="$(git rev-parse HEAD)" --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
#     --build-arg SOURCE=https://your.git.host/callhome-gateway .
#   docker run --rm -p 4334:4334 -p 4335:4335 -p 830:830 -p 9834:9834 \
#     -v "$PWD/config:/app/config:ro" -v chgw-state:/app/data callhome-gateway
#
# Stages: `toolchain` (node + python3/make/g++), `build` (all dependencies, tsc),
# `prod-deps` (`npm ci --omit=dev`, which compiles ssh2's native crypto binding),
# `runtime` (slim node, no compiler, no npm cache, non-root). test/deploy/runtime-install
# runs the prod-deps steps without Docker, so keep the two in step.

# Node.js 24, the current LTS (Node 20 reached end of life in April 2026). Pin the base by
# digest for reproducible builds: look up the multi-platform index digest of the tag with
#   docker buildx imagetools inspect node:24-slim      (the "Digest:" line)
# and build with --build-arg NODE_IMAGE=node:24-slim@sha256:<that digest>. For example
# node:24-slim@sha256:a9f5f7c91a432850b2a8a7797adf5eadb6c733ceed61167806cee7ea7fbc29df was
# the tag's index in August 2025; use a current one, refreshed with each release.
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS toolchain
# ssh2 builds lib/protocol/crypto/build/Release/sshcrypto.node with node-gyp at install time
# (and its optional cpu-features dependency builds too). Without the binding ssh2 falls back
# to pure-JS crypto, which is several times slower per device.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# The official image carries the node headers in /usr/local/include/node: point node-gyp at
# them so the native build needs no header download.
ENV npm_config_nodedir=/usr/local \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
WORKDIR /app

FROM toolchain AS build
COPY package.json package-lock.json ./
# Compiling TypeScript needs no native binding: skip install scripts here.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

FROM toolchain AS prod-deps
COPY package.json package-lock.json ./
# npm ci's postinstall applies patches/ (patch-package): ssh2's packet path, docs/SSH2_PATCH.md.
COPY patches ./patches
# The npm cache lives in a BuildKit cache mount, never in a layer.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev \
 && node -e "if (!require('ssh2/lib/protocol/crypto.js').bindingAvailable) { console.error('ssh2 native crypto binding did not build'); process.exit(1) }" \
 && node -e "if (typeof require('ssh2/lib/utils.js').makeSocketWriter !== 'function') { console.error('patches/ssh2 was not applied'); process.exit(1) }"

FROM ${NODE_IMAGE} AS runtime
# OCI annotations (docker inspect, registries, scanners). The build arguments default to
# "unknown" so an image built without them says so instead of lying.
ARG NODE_IMAGE
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="callhome-gateway" \
      org.opencontainers.image.description="NETCONF Call Home (RFC 8071) gateway" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
ENV NODE_ENV=production
# A fixed numeric uid/gid so Kubernetes can check runAsNonRoot and fsGroup matches.
RUN groupadd --system --gid 10001 callhome \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin callhome
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
# The SPEC defaults are relative to the working directory: inventory and users under
# /app/config (the empty, commented examples from the repository; mount yours over them
# read-only), state (the northbound host key, …) under /app/data.
COPY config ./config
COPY deploy/docker/healthcheck.mjs ./healthcheck.mjs
# Only /app/data is writable by the gateway user; the code and config stay root-owned.
RUN mkdir -p /app/data \
 && chown 10001:10001 /app/data \
 && chmod 0700 /app/data \
 && printf '#!/bin/sh\nexec node --heap-growing-percent=300 /app/dist/src/cli/main.js "$@"\n' > /usr/local/bin/callhome-gateway \
 && chmod 0755 /usr/local/bin/callhome-gateway
USER 10001:10001

# 4334 call home over SSH, 4335 call home over TLS, 830 NETCONF for managers, 9834 HTTP,
# 9835 the peer port between replicas.
# 830 is below 1024: Docker Engine (20.10+) lowers net.ipv4.ip_unprivileged_port_start to 0
# in every container, so the non-root user binds it with no capability at all. Kubernetes
# runtimes do not do that by default, and with allowPrivilegeEscalation: false neither
# capabilities.add (never reaches a non-root process's effective set) nor a file capability
# on node (no_new_privs; and node would fail to exec wherever the capability is dropped)
# is a fix. The manifests in deploy/ listen on 8830 and map 830 in the Service instead.
# See deploy/README.md. 9835 is cluster mode's peer port (sessions forwarded between
# replicas, cluster.peer.port), listened on only with cluster.redis.url set; a standalone
# `docker run` need not publish it.
EXPOSE 4334 4335 830 9834 9835

# No curl in slim images: a tiny node script asks /healthz (honours CHGW_HTTP_PORT).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/healthcheck.mjs"]

# node as PID 1 is fine here: the gateway handles SIGTERM itself (graceful drain within
# shutdown.grace) and starts no child processes that would need reaping.
STOPSIGNAL SIGTERM
# --heap-growing-percent=300: the heap growth bulk transfers need (src/heap.ts).
ENTRYPOINT ["node", "--heap-growing-percent=300", "/app/dist/src/cli/main.js"]
CMD ["run"]
