# One image for every service of the mesh: the command chooses the part (see docker-compose.yml).
# The build stage compiles the TypeScript and bundles the IDE (`npm run build`); the image holds the
# compiled dist/ and production dependencies only, and runs it with plain node.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No scripts: `prepare` builds the IDE from sources not copied yet; `npm run build` bundles it below.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY gateway ./gateway
COPY subgraphs ./subgraphs
COPY policy ./policy
RUN npm run build

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 DATA_DIR=/data
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
CMD ["node", "dist/gateway/main.js"]
