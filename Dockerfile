# syntax=docker/dockerfile:1
# kernelchaos images, multi-stage:
#   docker build -t ghcr.io/kernelchaos/kernelchaos:0.1.0 .                               webhook + controller (default target: runtime)
#   docker build --target companion -t ghcr.io/kernelchaos/kernelchaos-companion:0.1.0 .  node companion (clang, libbpf, bpftool)
# Both run `kernelchaos <command>`; the Deployment/DaemonSet choose the command in `args`.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: full dependencies, compile TypeScript to dist/
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# `prepare` compiles src/, which is not copied yet; the build runs explicitly below.
RUN npm pkg delete scripts.prepare && npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- prod-deps: production dependencies only (koffi's install script picks its prebuilt binary)
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm pkg delete scripts.prepare && npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- base: what every image runs
FROM ${NODE_IMAGE} AS base
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The static BPF C every fault program includes (dist/bpf/runtime-headers.js finds it here).
COPY src/bpf/*.h ./src/bpf/
COPY package.json ./
COPY bin ./bin
COPY proto ./proto
ENTRYPOINT ["node", "/app/bin/kernelchaos.js"]
CMD ["--help"]

# ---- companion: compiles and attaches BPF programs on the node; runs privileged as root by design
# (CAP_BPF/CAP_SYS_ADMIN, host cgroups), see manifests/companion.
FROM base AS companion
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang llvm libbpf1 libbpf-dev bpftool \
 && rm -rf /var/lib/apt/lists/*
USER 0:0

# ---- runtime (default): webhook and controller, non-root, read-only root filesystem friendly
FROM base AS runtime
# A numeric uid lets the kubelet verify runAsNonRoot without an /etc/passwd entry.
USER 65532:65532
EXPOSE 8443
