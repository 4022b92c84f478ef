/**
 * `npm start` in development with the live synthetic sources (issue 26, part 2): every LIVE_SOURCES
 * seconds they deliver new and changed rows, and the domains' pipelines (run as often) merge them
 * into the serving versions without a restart. Through the gateway: orders placed today, the
 * product's runs with the rows each increment inserted and updated, and a fresh product. In
 * production the synthetic sources are refused.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveSourcesFromEnv } from '../policy/live-sources.js';
import { freePort, postGraphQL, tokenFor } from './harness/mesh.js';
import { npmStart, stop, type Started } from './harness/npm-start.js';
import { runProcess } from './harness/run-process.js';

describe('npm start with the live sources', () => {
  let dataDir: string;
  let mesh: Started | undefined;
  let gateway: string;
  const started = new Date();

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'live-sources-'));
    const [port, ...subgraphPorts] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    gateway = `http://127.0.0.1:${port}/graphql`;
    mesh = await npmStart({
      DATA_DIR: dataDir,
      PORT: String(port),
      SUBGRAPHS: ['customers', 'products', 'finance'].map((name, i) => `${name}=http://127.0.0.1:${subgraphPorts[i]}/graphql`).join(','),
      SCALE: '0.05',
      LIVE_SOURCES: '10',
    });
  });

  afterAll(async () => {
    await stop(mesh);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('delivers increments that the pipelines merge into the served data, fresh, with their runs', async () => {
    await expect.poll(() => mesh!.output(), { timeout: 60_000 }).toMatch(/Live data: new and changed orders, customers and products every 10 s/);
    const steward = { authorization: `Bearer ${tokenFor()}` };
    const today = `${started.toISOString().slice(0, 10)}T00:00:00Z`;
    const todays = async () => (await postGraphQL<any>(gateway, `{ orders(first: 100, filter: { orderedFrom: "${today}" }) { totalCount nodes { id orderedAt status } } }`, undefined, steward)).body.data?.orders;
    // The data set ends on 2025-12-31: orders of today come from the live sources only.
    await expect.poll(async () => (await todays())?.totalCount ?? 0, { timeout: 90_000, interval: 2_000 }).toBeGreaterThan(0);
    const orders = await todays();
    for (const order of orders.nodes) expect(Date.parse(order.orderedAt)).toBeGreaterThan(started.getTime() - 3_600_000 - 60_000);
    expect(mesh!.output()).toMatch(/live sources delivered an increment/);
    expect(mesh!.output()).toMatch(/increments merged into the serving warehouse/);
    expect((await readdir(join(dataDir, 'raw', 'finance', 'increments'))).length).toBeGreaterThan(0);
    // The run that merged them, in the catalog (read from the domains every 30 s), and the product fresh.
    const product = async () =>
      (await postGraphQL<any>(gateway, '{ dataProduct(id: "finance.orders") { freshness { status loadedAt } pipeline { everySeconds runs(first: 20) { load rows rowsInserted rowsUpdated rowsDeleted watermark } } } }', undefined, steward)).body.data?.dataProduct;
    await expect.poll(async () => (await product())?.pipeline.runs.find((run: any) => run.rowsInserted > 0), { timeout: 60_000, interval: 2_000 }).toBeTruthy();
    const seen = await product();
    expect(seen.pipeline.everySeconds).toBe(10);
    expect(seen.pipeline.runs.find((run: any) => run.rowsInserted > 0)).toMatchObject({ load: 'swapped', rowsInserted: expect.any(Number), rowsUpdated: expect.any(Number), rowsDeleted: expect.any(Number), watermark: expect.stringMatching(/^\d{8}T\d{6}Z-\d{6}$/) });
    expect(seen.freshness.status).toBe('FRESH');
    expect(Date.parse(seen.freshness.loadedAt)).toBeGreaterThan(started.getTime());
  }, 180_000);
});

describe('LIVE_SOURCES', () => {
  it('is every 60 s in development by default, off in production, and refused in production or out of bounds', () => {
    expect(liveSourcesFromEnv({})).toBe(60);
    expect(liveSourcesFromEnv({ LIVE_SOURCES: 'off' })).toBeNull();
    expect(liveSourcesFromEnv({ NODE_ENV: 'production' })).toBeNull();
    expect(liveSourcesFromEnv({ NODE_ENV: 'production', LIVE_SOURCES: 'off' })).toBeNull();
    expect(() => liveSourcesFromEnv({ NODE_ENV: 'production', LIVE_SOURCES: '60' })).toThrow(/refused in production/);
    for (const bad of ['5', '1.5', '-10', 'often', '86401', '1e3x']) expect(() => liveSourcesFromEnv({ LIVE_SOURCES: bad })).toThrow(/LIVE_SOURCES must be off or whole seconds from 10 to 86400/);
  });

  it('stops the live sources command, delivering nothing, when they are off or asked for in production', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'live-refused-'));
    try {
      for (const [env, message] of [
        [{ LIVE_SOURCES: 'off' }, 'The live sources are off (LIVE_SOURCES=off).'],
        [{ LIVE_SOURCES: '60', NODE_ENV: 'production' }, 'LIVE_SOURCES is set: the synthetic live sources are for development and are refused in production'],
      ] as const) {
        const { code, output } = await runProcess(process.execPath, ['--import', 'tsx', 'subgraphs/main.ts', 'live'], { cwd: resolve(import.meta.dirname, '..'), env: { DATA_DIR: dataDir, ...env } });
        expect(code, output).not.toBe(0);
        expect(output).toContain(message);
      }
      expect(await readdir(dataDir)).toEqual([]);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
