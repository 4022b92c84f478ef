/**
 * Docker does not run here, so the container set-up is checked against the code instead: the
 * compose file's commands (programs of the production build), ports, URLs and warehouses must agree with the build, the gateway's
 * configuration and the list of domains; and the image, which installs production dependencies
 * only, must hold every package the services import.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseSubgraphList } from '../gateway/config.js';
import { BUILT_FOLDERS, DEVELOPMENT_TOOLS } from '../gateway/launcher/build.js';
import { domains, KIT_PACKAGE } from '../subgraphs/domains.js';
import { parseWarehouseUrl } from '../subgraphs/kit/warehouse/warehouse.js';
import { createMetrics } from '../policy/metrics.js';
import { eventsNatsUrlFromEnv } from '../policy/events/feed-from-env.js';
import { inputAccessFromEnv } from '../subgraphs/kit/events/inputs.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Service {
  build?: string;
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
}

const compose = parse(await readFile(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const services = compose.services;
const gatewayEnv = services.gateway!.environment!;
const subgraphUrls = parseSubgraphList(services.publish!.environment!.SUBGRAPHS!);

describe('docker-compose.yml', () => {
  it('runs programs of the production build, with plain node', async () => {
    const ours = Object.entries(services).filter(([, service]) => service.build !== undefined || service.image === 'data-mesh:latest');
    expect(ours.map(([name]) => name).sort()).toEqual(['finance', 'gateway', 'prepare', 'products', 'publish', 'customers'].sort());
    for (const [name, service] of ours) {
      const [node, program] = service.command ?? [];
      expect(node, name).toBe('node');
      // A compiled program: built from a source file that the build compiles.
      const source = /^dist\/(.+)\.js$/.exec(program ?? '')?.[1];
      expect(source, `${name}: ${program}`).toBeDefined();
      expect(BUILT_FOLDERS.some((folder) => source!.startsWith(`${folder}/`)) && !DEVELOPMENT_TOOLS.includes(`${source}.ts`), name).toBe(true);
      await expect(readFile(join(root, `${source}.ts`), 'utf8'), name).resolves.toBeTruthy();
    }
  });

  it('shares the gateway\'s rate-limit buckets in the Redis service it waits for', () => {
    const url = new URL(gatewayEnv.RATE_LIMIT_REDIS_URL!);
    expect(url.protocol).toBe('redis:');
    expect(services[url.hostname], 'a service named as the URL\'s host').toBeDefined();
    expect(services.gateway!.depends_on![url.hostname]).toEqual({ condition: 'service_healthy' });
    expect(services[url.hostname]!.healthcheck).toBeDefined();
  });

  it('publishes every subgraph\'s change events to the NATS JetStream service that it and the gateway wait for, its streams on a volume', () => {
    const nats = services.nats!;
    expect(nats.command).toEqual(expect.arrayContaining(['-js', '-sd', '/data']));
    expect(nats.volumes).toEqual(['nats-data:/data']);
    expect(nats.healthcheck?.test.join(' ')).toContain('js-enabled-only=true');
    // The subgraphs publish; the gateway's response cache follows.
    for (const name of [...domains.map((domain) => domain.name), 'gateway']) {
      const service = services[name]!;
      expect(eventsNatsUrlFromEnv(service.environment), name).toBe('nats://nats:4222');
      expect(service.depends_on?.nats, name).toEqual({ condition: 'service_healthy' });
    }
  });

  it("gives each domain fed by another's product the gateway's URL and a token file of its own (production refuses it without one)", () => {
    const fed = domains.filter((domain) => domain.dataProducts.some(({ spec }) => (spec.inputs ?? []).length > 0));
    expect(fed.map((domain) => domain.name)).toEqual(['customers']);
    for (const domain of fed) {
      const service = services[domain.name]!;
      expect(service.environment!.GATEWAY_URL).toBe(`http://gateway:${gatewayEnv.PORT}/graphql`);
      const secret = /^\/run\/secrets\/(\w+)$/.exec(service.environment!.MESH_TOKEN_FILE ?? '')?.[1];
      expect(secret, domain.name).toBeDefined();
      expect((service as { secrets?: string[] }).secrets).toContain(secret);
      expect((compose as { secrets?: Record<string, { file?: string }> }).secrets?.[secret!]?.file).toMatch(/^\$\{\w+:\?/);
      expect(() => inputAccessFromEnv(domain.name, { ...service.environment, MESH_TOKEN_FILE: '' })).toThrow(/MESH_TOKEN_FILE/);
    }
  });

  it('runs each domain as its own service, on the port and host the gateway is configured with', () => {
    expect(subgraphUrls.map((s) => s.name)).toEqual(domains.map((d) => d.name));
    for (const { name, url } of subgraphUrls) {
      const service = services[name];
      expect(service?.command, name).toEqual(['node', 'dist/subgraphs/main.js', 'serve', name]);
      const { hostname, port } = new URL(url);
      expect(hostname).toBe(name);
      expect(service!.environment!.PORT).toBe(port);
    }
    expect(services.gateway!.ports).toEqual([`${gatewayEnv.PORT}:${gatewayEnv.PORT}`]);
  });

  it('gives every subgraph its own PostgreSQL warehouse, built by the data job first', () => {
    for (const { name } of domains) {
      const variable = `${name.toUpperCase()}_WAREHOUSE_URL`;
      for (const job of [name, 'prepare']) {
        const location = parseWarehouseUrl(services[job]!.environment![variable]!);
        expect(location, `${job} ${variable}`).toMatchObject({ dialect: 'postgres', schema: name });
        if (location.dialect === 'postgres') expect(new URL(location.connectionString).hostname).toBe('postgres');
      }
      expect(services[name]!.depends_on?.prepare).toEqual({ condition: 'service_completed_successfully' });
    }
    expect(services.prepare!.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
  });

  it('publishes the healthy subgraphs to the registry, then starts the gateway on it, and checks every long-running service', () => {
    expect(services.publish!.depends_on).toEqual(Object.fromEntries(domains.map((d) => [d.name, { condition: 'service_healthy' }])));
    expect(services.publish!.command).toEqual(['node', 'dist/gateway/registry/cli.js', 'publish-running', '--by', 'compose']);
    expect(services.gateway!.depends_on).toMatchObject({ publish: { condition: 'service_completed_successfully' } });
    // The publish job and the gateway share one registry, in PostgreSQL.
    const registry = new URL(gatewayEnv.REGISTRY_URL!);
    expect(registry).toMatchObject({ protocol: 'postgres:', hostname: 'postgres', search: '?schema=registry' });
    expect(services.publish!.environment!.REGISTRY_URL).toBe(gatewayEnv.REGISTRY_URL);
    expect(gatewayEnv.SUPERGRAPH_SOURCE ?? 'registry').toBe('registry');
    for (const name of ['postgres', 'gateway', ...domains.map((d) => d.name)]) {
      expect(services[name]!.healthcheck?.test, name).toBeDefined();
    }
    for (const name of ['gateway', ...domains.map((d) => d.name)]) {
      expect(services[name]!.healthcheck!.test.join(' '), name).toContain('/health/ready');
      expect(services[name]!.environment!.NODE_ENV).toBe('production');
    }
  });
});

describe('Prometheus and Grafana', () => {
  const observability = join(root, 'gateway', 'observability');

  it('Prometheus scrapes /metrics of the gateway and every subgraph, on their ports', async () => {
    const prometheus = parse(await readFile(join(observability, 'prometheus.yml'), 'utf8')) as {
      scrape_configs: { metrics_path: string; static_configs: { targets: string[] }[] }[];
    };
    const [job] = prometheus.scrape_configs;
    expect(job!.metrics_path).toBe('/metrics');
    const expected = ['gateway', ...domains.map((d) => d.name)].map((name) => `${name}:${services[name]!.environment!.PORT}`);
    expect(job!.static_configs.flatMap((c) => c.targets).sort()).toEqual(expected.sort());
    expect(services.prometheus!.volumes).toContain('./gateway/observability/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
  });

  it('Grafana reads Prometheus and a dashboard whose every series the services export', async () => {
    const datasources = parse(await readFile(join(observability, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
      datasources: { uid: string; url: string }[];
    };
    expect(datasources.datasources[0]).toMatchObject({ uid: 'prometheus', url: 'http://prometheus:9090' });
    expect(services.grafana!.volumes).toEqual([
      './gateway/observability/grafana/provisioning:/etc/grafana/provisioning:ro',
      './gateway/observability/grafana/dashboards:/var/lib/grafana/dashboards:ro',
    ]);
    const dashboard = JSON.parse(await readFile(join(observability, 'grafana/dashboards/mesh.json'), 'utf8')) as {
      panels: { targets: { expr: string; datasource: { uid: string } }[] }[];
    };
    const exported = new Set((await createMetrics('check').registry.getMetricsAsJSON()).map((metric) => metric.name));
    const used = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/\b(mesh_[a-z_]+)/g)].map((m) => m[1]!))));
    expect(used.size).toBeGreaterThanOrEqual(8);
    for (const series of used) expect(exported, series).toContain(series.replace(/_(bucket|count|sum)$/, ''));
    for (const panel of dashboard.panels) for (const target of panel.targets) expect(target.datasource.uid).toBe('prometheus');
  });
});

describe('the image', () => {
  async function runtimeImports(): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    for (const folder of ['gateway', 'subgraphs', 'policy']) {
      const entries = await readdir(join(root, folder), { recursive: true, withFileTypes: true });
      for (const entry of entries) {
        if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts')) continue;
        const file = join(entry.parentPath, entry.name);
        if (DEVELOPMENT_TOOLS.includes(relative(root, file))) continue;
        const text = await readFile(file, 'utf8');
        for (const [, specifier] of text.matchAll(/^import (?!type )[^;]*?from '([^.'][^']*)'/gms)) {
          // Node's own modules, and the kit a domain imports by name, which the mesh provides (subgraphs/domains.ts).
          if (specifier!.startsWith('node:') || specifier === KIT_PACKAGE) continue;
          const name = specifier!.startsWith('@') ? specifier!.split('/').slice(0, 2).join('/') : specifier!.split('/')[0]!;
          found.set(name, relative(root, file));
        }
      }
    }
    return found;
  }

  it('holds every package the services import (production dependencies only)', async () => {
    const imports = await runtimeImports();
    expect(imports.size).toBeGreaterThan(10);
    for (const [name, file] of imports) expect(Object.keys(pkg.dependencies), `${name} (imported by ${file})`).toContain(name);
    // The services run compiled: TypeScript, tsx and the IDE's build (esbuild, graphiql, React) are development tools.
    for (const tool of ['typescript', 'tsx', 'esbuild', 'graphiql', 'react']) expect(Object.keys(pkg.dependencies)).not.toContain(tool);
  });

  it('runs on the Node it supports (24 LTS, and 22): in its image, in package.json, and here', async () => {
    const dockerfile = await readFile(join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile.match(/^FROM .*$/gm)).toEqual(['FROM node:24-bookworm-slim AS build', 'FROM node:24-bookworm-slim']);
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe('^22.15 || >=24');
    // The tests themselves (.ci/run brings Node 24 where the machine's Node is older): Node 20 is past its end of life.
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
  });

  it('builds in a stage of its own and ships the compiled build, on production dependencies only', async () => {
    const dockerfile = await readFile(join(root, 'Dockerfile'), 'utf8');
    const [build, runtime] = dockerfile.split(/^FROM /m).slice(1);
    expect(build).toMatch(/^node:24-bookworm-slim AS build$/m);
    for (const folder of BUILT_FOLDERS) expect(build).toContain(`COPY ${folder} ./${folder}`);
    expect(build).toMatch(/^RUN npm run build$/m);
    expect(runtime).toMatch(/^RUN npm ci --omit=dev /m);
    expect(runtime).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    // No source in the image: only the build.
    expect(runtime).not.toMatch(/^COPY (gateway|subgraphs|policy) /m);
    expect(runtime).toMatch(/^ENV NODE_ENV=production /m);
    expect(runtime).toContain('CMD ["node", "dist/gateway/main.js"]');
  });
});
