# syntax=docker/dockerfile:1
# One image for every Strata role: `docker run strata:local start --role api|projector|scheduler|gateway|runner`
# (compose.yaml runs them all). Without a role it is the whole platform in one container (`all`).

FROM node:24-bookworm AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
# isolated-vm loads a prebuilt binary for linux x64 and arm64 (glibc); this full image has the compilers
# for a platform it has none for.
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
# Python311 functions: Debian 12's Python 3.11. util-linux (unshare) is part of every Debian image.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3.11 \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    STRATA_DATA_DIR=/var/lib/strata \
    HOST=0.0.0.0 \
    PORT=8080
COPY --from=dependencies /app/node_modules ./node_modules
COPY . .
RUN mkdir -p /var/lib/strata && chown node:node /var/lib/strata
# The code stays root's and read-only to the node user; runners need root (compose.yaml says why).
USER node
EXPOSE 8080
ENTRYPOINT ["node", "--single-threaded-gc", "bin/strata.ts"]
CMD ["start"]
