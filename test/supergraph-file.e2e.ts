/**
 * The gateway serving a supergraph file composed by another tool, for subgraphs that are not ours:
 * every federation feature plain Apollo Gateway supports keeps working through our gateway and its
 * plugins, unclassified fields are denied unless an operator says otherwise, and the file is
 * reloaded when it changes (a bad one never replaces the serving supergraph).
 */
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeServices } from '@apollo/composition';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UnclassifiedTreatment } from '../gateway/supergraph/supergraph-source.js';
import { startFederationFixture, type RunningFixture } from './fixtures/federation-subgraphs.js';
import { logLines, postGraphQL, startTestGateway, testGatewayConfig, tokenFor, type GraphQLResponse } from './harness/mesh.js';

let fixture: RunningFixture;
let dir: string;
let supergraphFile: string;
const gateways: { stop(): Promise<void> }[] = [];

/** Replaces a file at once, as a deploy tool should (a poller never sees it half-written). */
async function replaceFile(path: string, content: string): Promise<void> {
  await writeFile(`${path}.next`, content);
  await rename(`${path}.next`, path);
}

function compose(names?: readonly string[]): string {
  const result = composeServices(
    fixture.subgraphs.filter((s) => !names || names.includes(s.name)).map(({ name, url, typeDefs }) => ({ name, url, typeDefs })),
  );
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  return result.supergraphSdl;
}

async function fileGateway(unclassified: UnclassifiedTreatment, name: string, path = supergraphFile) {
  const gateway = await startTestGateway(
    testGatewayConfig({ dataDir: dir, name, supergraph: { kind: 'file', path, pollMs: 100, unclassified } }),
  );
  gateways.push(gateway);
  await gateway.ready;
  return gateway;
}

beforeAll(async () => {
  fixture = await startFederationFixture();
  dir = await mkdtemp(join(tmpdir(), 'supergraph-file-'));
  supergraphFile = join(dir, 'external-supergraph.graphql');
  await writeFile(supergraphFile, compose());
});

afterAll(async () => {
  for (const gateway of gateways) await gateway.stop();
  await fixture?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('federation features through our gateway (unclassified fields allowed by the operator)', () => {
  let url: string;
  const token = tokenFor({ subject: 'analyst-1', roles: ['analyst'] });
  const query = async (text: string): Promise<GraphQLResponse> => (await postGraphQL<Record<string, any>>(url, text, undefined, { authorization: `Bearer ${token}` })).body;

  beforeAll(async () => {
    url = (await fileGateway('allow', 'allow')).url;
  });

  it('warns at start that unclassified fields are not denied', () => {
    const warning = logLines.map((line) => JSON.parse(line)).find((line) => line.unclassified === 'allow');
    expect(warning).toMatchObject({ level: 40, msg: expect.stringMatching(/^UNCLASSIFIED_FIELDS=allow: fields without a classification are NOT denied/) });
  });

  it('@requires: the gateway fetches the required field from its owner first', async () => {
    fixture.resetCalls();
    expect(await query('{ products { upc shippingEstimate } }')).toEqual({
      data: { products: [{ upc: 'P1', shippingEstimate: 6 }, { upc: 'P2', shippingEstimate: 15 }] },
    });
    expect(fixture.calls).toMatchObject({ catalog: 1, shipping: 1 });
  });

  it('@provides: the providing subgraph answers, the owner is not asked', async () => {
    fixture.resetCalls();
    expect(await query('{ reviews { body author { username } } }')).toEqual({
      data: { reviews: [{ body: 'Boils fast', author: { username: 'ada' } }, { body: 'Too dim', author: { username: 'grace' } }] },
    });
    expect(fixture.calls.accounts).toBe(0);
  });

  it('@override and @shareable: the price comes from pricing, never the stale catalog value', async () => {
    fixture.resetCalls();
    expect(await query('{ products { name price { amount currency } } }')).toEqual({
      data: {
        products: [
          { name: 'Kettle', price: { amount: 39.5, currency: 'EUR' } },
          { name: 'Lamp', price: { amount: 24, currency: 'EUR' } },
        ],
      },
    });
    expect(fixture.calls.pricing).toBe(1);
  });

  it('entity interfaces and @interfaceObject: a field added to every Media by another subgraph', async () => {
    expect(await query('{ media { __typename id title rating ... on Book { author } ... on Movie { director } } }')).toEqual({
      data: {
        media: [
          { __typename: 'Book', id: 'M1', title: 'Dune', rating: 4.5, author: 'Herbert' },
          { __typename: 'Movie', id: 'M2', title: 'Alien', rating: 3.9, director: 'Scott' },
        ],
      },
    });
  });

  it('unions: members resolved across subgraphs', async () => {
    expect(await query('{ search(term: "e") { __typename ... on Product { name shippingEstimate } ... on Book { title rating } } }')).toEqual({
      data: {
        search: [
          { __typename: 'Product', name: 'Kettle', shippingEstimate: 6 },
          { __typename: 'Book', title: 'Dune', rating: 4.5 },
        ],
      },
    });
  });

  it('runs the same plugins: the gateway audits each operation', async () => {
    await query('{ me { username } }');
    const lines = (await readFile(join(dir, 'audit', 'gateway-allow.jsonl'), 'utf8')).trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(6);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ kind: 'gateway-operation', subject: 'analyst-1', outcome: 'success' });
  });
});

describe('unclassified fields of a supergraph without our directives', () => {
  it('are denied to everyone by default, stewards included, and no subgraph is asked', async () => {
    const gateway = await fileGateway('deny', 'deny');
    fixture.resetCalls();
    const { body } = await postGraphQL(gateway.url, '{ products { name } }', undefined, { authorization: `Bearer ${tokenFor()}` });
    expect(body.data).toBeNull(); // products is non-null: its null reaches the root
    expect(body.errors).toEqual([
      expect.objectContaining({
        path: ['products'],
        message: expect.stringMatching(/^Not allowed to read Query\.products: .*\(unclassified: denied to everyone\)/),
        extensions: expect.objectContaining({ code: 'FORBIDDEN' }),
      }),
    ]);
    expect(Object.values(fixture.calls).every((n) => n === 0)).toBe(true);
  });

  it('take a level\'s default when the operator names one', async () => {
    const gateway = await fileGateway('INTERNAL', 'internal');
    const anonymous = await postGraphQL(gateway.url, '{ products { name } }');
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const signedIn = await postGraphQL(gateway.url, '{ products { name } }', undefined, { authorization: `Bearer ${tokenFor({ subject: 'x', roles: [] })}` });
    expect(signedIn.body).toEqual({ data: { products: [{ name: 'Kettle' }, { name: 'Lamp' }] } });
  });
});

describe('reloading the supergraph file', () => {
  it('serves a changed file without a restart, and keeps the last good one when the file is bad', async () => {
    // A file of its own: the other gateways of this file watch theirs.
    const file = join(dir, 'reloaded-supergraph.graphql');
    await writeFile(file, compose());
    const gateway = await fileGateway('allow', 'reload', file);
    const token = `Bearer ${tokenFor()}`;
    const rating = () => postGraphQL(gateway.url, '{ media { rating } }', undefined, { authorization: token });
    expect((await rating()).body.errors).toBeUndefined();
    const readiness = async () => (await fetch(new URL('/health/ready', gateway.url))).json() as Promise<any>;
    const before = await readiness();
    expect(before).toMatchObject({ status: 'ready', supergraph: { origin: file }, lastReloadFailure: null });

    // The ratings subgraph is taken out of the supergraph: `rating` is gone.
    await replaceFile(file, compose(['catalog', 'pricing', 'shipping', 'reviews', 'accounts', 'media']));
    const deadline = Date.now() + 10_000;
    while ((await rating()).body.errors?.[0]?.extensions?.code !== 'GRAPHQL_VALIDATION_FAILED') {
      if (Date.now() > deadline) throw new Error('the changed file was not served');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const changed = await readiness();
    expect(changed.supergraph.version).not.toBe(before.supergraph.version);
    expect(changed.supergraph.subgraphs).not.toContain('ratings');

    // A file that is not a supergraph: refused, reported, and the last good one stays.
    await replaceFile(file, 'type Query { broken: String }');
    while ((await readiness()).lastReloadFailure === null) {
      if (Date.now() > deadline) throw new Error('the bad file was not reported');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const after = await readiness();
    expect(after.supergraph).toEqual(changed.supergraph);
    expect(after.lastReloadFailure).toMatchObject({ failures: 1, error: expect.any(String) });
    const logged = logLines.map((line) => JSON.parse(line)).filter((line) => line.msg?.startsWith('a new supergraph was refused'));
    expect(logged.at(-1)).toMatchObject({ level: 50, candidate: file, serving: changed.supergraph.version });
    const products = await postGraphQL(gateway.url, '{ products { name } }', undefined, { authorization: token });
    expect(products.body).toEqual({ data: { products: [{ name: 'Kettle' }, { name: 'Lamp' }] } });
    await replaceFile(file, compose());
  });

  it('refuses to start on a file that does not exist, saying which', async () => {
    const gateway = await startTestGateway(
      testGatewayConfig({ dataDir: dir, name: 'missing', supergraph: { kind: 'file', path: join(dir, 'nope.graphql'), pollMs: 100, unclassified: 'deny' } }),
    );
    gateways.push(gateway);
    await expect(gateway.ready).rejects.toThrow(/nope\.graphql/);
    expect(await (await fetch(new URL('/health/ready', gateway.url))).json()).toMatchObject({ status: 'failed', error: expect.stringContaining('nope.graphql') });
  });
});
