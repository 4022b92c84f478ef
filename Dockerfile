# One image for every service of the mesh: the command chooses the part (see docker-compose.yml).
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 DATA_DIR=/data
COPY package.json package-lock.json ./
# No scripts yet: `prepare` builds the IDE, whose sources are copied below.
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY gateway ./gateway
COPY subgraphs ./subgraphs
COPY policy ./policy
# The analysts' IDE, bundled from the graphiql package now, so the gateway never builds it at start.
RUN npm run build:ide
RUN mkdir -p /data && chown node:node /data
USER node
CMD ["npm", "run", "gateway"]
