import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { customers } from '../subgraphs/customers/index.js';
import { compareIncrementNames, INCREMENTS_FOLDER, incrementsIn } from '../subgraphs/kit/warehouse/increments.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gatewayInputReader, inputAccessFromEnv, InputReadError, inputPositionIn, inputsOf, writeInputIncrement } from '../subgraphs/kit/events/inputs.js';

const [{ input }] = inputsOf(customers) as [ReturnType<typeof inputsOf>[number]];
let rawDir: string;
beforeEach(async () => {
  rawDir = await mkdtemp(join(tmpdir(), 'inputs-'));
});
afterEach(async () => {
  await rm(rawDir, { recursive: true, force: true });
});

describe("an input's increments", () => {
  it('hold its rows and tombstones as the table file, named after every delivery there, and say the position they hold', async () => {
    // Another source delivered later than this clock says: the input's increment still comes after it (it would be passed over as late).
    await mkdir(join(rawDir, INCREMENTS_FOLDER, '20300101T000000Z-000007'), { recursive: true });
    await writeFile(join(rawDir, INCREMENTS_FOLDER, '20300101T000000Z-000007', 'customers.csv'), 'id,name\n');
    const name = await writeInputIncrement({
      rawDir,
      domain: customers,
      input,
      position: 42,
      rows: [{ order_id: 'O1', customer_id: 'C1', status: 'PAID', total: 12.5 }],
      gone: () => ['O2'],
      now: new Date('2026-12-07T00:00:00Z'),
    });
    expect(name).toBe('20300101T000000Z-000008-from-finance.orders-p42');
    expect(compareIncrementNames(name, '20300101T000000Z-000007')).toBeGreaterThan(0);
    const text = await readFile(join(rawDir, INCREMENTS_FOLDER, name, 'customer_orders.csv'), 'utf8');
    expect(parse(text)).toEqual([
      ['order_id', 'customer_id', 'status', 'total', '_deleted'],
      ['O1', 'C1', 'PAID', '12.5', 'false'],
      ['O2', '', '', '', 'true'],
    ]);
    // A merge reads it as the table's increment; nothing was left aside.
    const [, read] = await incrementsIn(rawDir, customers.tables, null);
    expect([...read!.files.keys()]).toEqual(['customer_orders']);
    expect((await readdir(join(rawDir, INCREMENTS_FOLDER))).filter((entry) => entry.startsWith('.'))).toEqual([]);
    expect(await inputPositionIn(rawDir, 'finance.orders')).toBe(42);
    expect(await inputPositionIn(rawDir, 'products.products')).toBeNull();
  });

  it('say where the input is by the last one written, not the highest position: a feed that started again is read from its new start', async () => {
    expect(await inputPositionIn(rawDir, 'finance.orders')).toBeNull();
    const write = (position: number, at: string) => writeInputIncrement({ rawDir, domain: customers, input, position, rows: [], gone: () => [], now: new Date(at) });
    await write(900, '2026-12-07T00:00:00Z');
    expect(await inputPositionIn(rawDir, 'finance.orders')).toBe(900);
    // The feed was replaced (a new stream): the snapshot read then holds it up to position 3 of the new one,
    // in the same second too (its name still after the last).
    await write(3, '2026-12-07T00:00:00Z');
    expect(await inputPositionIn(rawDir, 'finance.orders')).toBe(3);
    await write(1, '2026-12-06T00:00:00Z'); // a clock behind
    expect(await inputPositionIn(rawDir, 'finance.orders')).toBe(1);
    expect((await readdir(join(rawDir, INCREMENTS_FOLDER))).sort(compareIncrementNames)).toEqual([
      '20261207T000000Z-000000-from-finance.orders-p900',
      '20261207T000000Z-000001-from-finance.orders-p3',
      '20261207T000000Z-000002-from-finance.orders-p1',
    ]);
  });

  it('stream a snapshot page by page to one file', async () => {
    async function* pages() {
      for (let page = 0; page < 3; page += 1) yield Array.from({ length: 500 }, (_, i) => ({ order_id: `O${page * 500 + i}`, customer_id: 'C1', status: 'PAID', total: 1 }));
    }
    const name = await writeInputIncrement({ rawDir, domain: customers, input, position: 0, rows: pages(), gone: () => [] });
    const rows = parse(await readFile(join(rawDir, INCREMENTS_FOLDER, name, 'customer_orders.csv'), 'utf8')) as string[][];
    expect(rows).toHaveLength(1 + 1_500);
  });
});

describe('where and as whom inputs are read', () => {
  it('in development, as a steward of the local issuer for the domain; in production only with a token file of its own', async () => {
    const development = inputAccessFromEnv('customers', {});
    expect(development.url).toBe('http://127.0.0.1:4000/graphql');
    const [, payload] = (await development.token()).split('.');
    expect(JSON.parse(Buffer.from(payload!, 'base64url').toString())).toMatchObject({ sub: 'customers-inputs', roles: ['steward'] });
    expect(() => inputAccessFromEnv('customers', { NODE_ENV: 'production' })).toThrow(/MESH_TOKEN_FILE/);
    expect(() => inputAccessFromEnv('customers', { GATEWAY_URL: 'file:///etc/passwd' })).toThrow(/GATEWAY_URL/);
    const file = join(rawDir, 'token');
    const production = inputAccessFromEnv('customers', { NODE_ENV: 'production', MESH_TOKEN_FILE: file, GATEWAY_URL: 'https://mesh.example/graphql' });
    await expect(production.token()).rejects.toThrow(/ENOENT/);
    await writeFile(file, '  a.b.c\n');
    await expect(production.token()).resolves.toBe('a.b.c');
    await writeFile(file, '\n');
    await expect(production.token()).rejects.toMatchObject({ codes: ['UNAUTHENTICATED'] });
  });
});

describe('reads through the gateway', () => {
  /** A stand-in gateway answering each request with the next of `answers` (status, body, headers), recording what was asked. */
  async function gatewayAnswering(answers: { status: number; body: unknown; headers?: Record<string, string> }[]) {
    const asked: { variables: Record<string, unknown>; authorization: string | undefined }[] = [];
    const server = createServer((req, res) => {
      let text = '';
      req.on('data', (chunk) => (text += chunk));
      req.on('end', () => {
        asked.push({ variables: (JSON.parse(text) as { variables: Record<string, unknown> }).variables, authorization: req.headers.authorization });
        const answer = answers.shift() ?? { status: 500, body: {} };
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end(JSON.stringify(answer.body));
      });
    }).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`, asked, close: () => new Promise((resolve) => server.close(resolve)) };
  }
  const page = (ids: string[], next: string | null) => ({ status: 200, body: { data: { page: { nodes: ids.map((id) => ({ id, customer: { id: 'C1' }, status: 'PAID', total: 1 })), pageInfo: { hasNextPage: next !== null, endCursor: next } } } } });

  it('go on where they were after a passing refusal (rate limited, with Retry-After): no page read twice, none skipped', async () => {
    const gateway = await gatewayAnswering([page(['O1'], 'c1'), { status: 429, body: { errors: [{ message: 'slow down', extensions: { code: 'RATE_LIMITED' } }] }, headers: { 'retry-after': '1' } }, page(['O2'], null)]);
    try {
      const reader = gatewayInputReader({ url: gateway.url, token: () => 'the-token' });
      const pages: unknown[][] = [];
      for await (const nodes of reader.all(input)) pages.push([...nodes]);
      expect(pages.map((nodes) => nodes.map((node) => (node as { id: string }).id))).toEqual([['O1'], ['O2']]);
      expect(gateway.asked.map(({ variables }) => variables.after)).toEqual([null, 'c1', 'c1']);
      expect(gateway.asked.every(({ authorization }) => authorization === 'Bearer the-token')).toBe(true);
    } finally {
      await gateway.close();
    }
  });

  it('fail at once, with the codes, on a refusal that does not pass, or an answer holding any error (a withheld value is never taken for a null)', async () => {
    const gateway = await gatewayAnswering([
      { status: 200, body: { data: { page: null }, errors: [{ message: 'no', extensions: { code: 'FORBIDDEN' } }] } },
      { status: 200, body: { data: { page: { nodes: [{ id: 'O1', customer: null, status: 'PAID', total: null }] } }, errors: [{ message: 'masked', extensions: { code: 'FORBIDDEN' } }] } },
      { status: 404, body: 'not json' },
    ]);
    try {
      const reader = gatewayInputReader({ url: gateway.url, token: () => 't' });
      await expect(reader.byKeys(input, ['O1'])).rejects.toMatchObject({ name: 'InputReadError', codes: ['FORBIDDEN'] });
      await expect(reader.byKeys(input, ['O1'])).rejects.toMatchObject({ codes: ['FORBIDDEN'] });
      await expect(reader.byKeys(input, ['O1'])).rejects.toBeInstanceOf(InputReadError);
      expect(gateway.asked).toHaveLength(3);
    } finally {
      await gateway.close();
    }
  });
});
