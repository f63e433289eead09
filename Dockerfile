# syntax=docker/dockerfile:1
#
# mcp-gateway container image.
#
#   docker build -t mcp-gateway .
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp -v mcp-gateway-data:/data mcp-gateway
#
# The build downloads npm packages and nothing else: no apt-get, no curl, no Prisma engine
# downloads (migrations and queries run on Prisma's wasm engines, see src/database/migrator.ts).
#
# Node 24 LTS, pinned by tag. Pin the digest as well where the registry is reachable:
#   docker build --build-arg NODE_IMAGE=node:24.21.0-trixie-slim@sha256:<digest> .
ARG NODE_IMAGE=node:24.21.0-trixie-slim

# ---- build: every dependency, the generated Prisma client, TypeScript compiled to dist/
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the project's own postinstall (generate + build) needs the sources,
# copied below so that a source change does not re-install; @prisma/engines' postinstall
# would try to download native engines that nothing here uses.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json prisma.config.ts ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY src ./src
RUN node scripts/prisma-generate.js && npm run build

# ---- prod-deps: production dependencies only, without install scripts (none is needed at run
# time: @prisma/engines' would download native engines, @scarf/scarf's and core-js's only report).
# --omit=optional drops what production code reaches only through optional edges: today TypeScript,
# pg-cloudflare and @types/trusted-types; once `prisma` (the CLI, unused at run time) moves to
# devDependencies, also the CLI and Prisma Studio behind @prisma/client's optional peer (~240 MB).
# Revisit it if a production dependency ever ships its binaries as optional packages.
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund

# ---- runtime
FROM ${NODE_IMAGE} AS runtime
# DATA_DIR holds the embedded database when DATABASE_URL is unset (a single container on its own);
# on Kubernetes it is an emptyDir and PostgreSQL and Redis are external.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data
# glibc's allocator: two arenas for all threads, and fixed thresholds, so that memory freed after a burst
# (catalog loads, large bodies) goes back to the system instead of staying in per-thread arenas. Idle RSS
# with 100 × 50 tools (`npm run bench`, which starts the gateway with these too): 139-147 MB, against 166-176.
ENV MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=131072 \
    MALLOC_TRIM_THRESHOLD_=131072
# V8's young generation at Node 20's size (16 MB semi-spaces): Node 24's V8 grows it to 64 MB ones under load,
# and `npm run bench` under Node 24 peaked at 318-333 MB resident (concurrency 32 and 128) against 235-255 MB with
# this, CPU per call no higher. Kubernetes' memory limit does not need to be there for it to hold.
ENV NODE_OPTIONS=--max-semi-space-size=16
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY prisma/migrations ./prisma/migrations
# The code stays root-owned and read-only to the gateway's user; only DATA_DIR is its own.
# npm, npx, corepack and yarn are not needed to run the gateway: they go, with their CVE reports.
RUN ln -s /app/bin/mcp-gateway.js /usr/local/bin/mcp-gateway \
 && mkdir -p /data \
 && chown 1000:1000 /data \
 && rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
# The base image's `node` user, numeric so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8000
# Slim images have no curl or wget: Node asks. Kubernetes ignores this and uses its own probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/health/live', { signal: AbortSignal.timeout(4000) }).then((res) => process.exit(res.ok ? 0 : 1), () => process.exit(1))"]
# No init process (tini) and no entrypoint shim: the gateway is PID 1, and the kernel gives PID 1 no
# default signal actions. It relies on the gateway's own SIGTERM/SIGINT handlers (drain, exit 0; a
# second signal spools the audit queue and exits 1). They are installed before start-up, so a stop
# during start-up finishes starting, then drains and exits 0 (start-up must end within the runtime's
# grace period). Its child processes, if any, are its own workers, which Node reaps. tini would
# need Debian's package archive at build time; `docker run --init` adds one where wanted.
ENTRYPOINT []
CMD ["mcp-gateway", "serve"]
