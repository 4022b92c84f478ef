/**
 * The gateway sends nothing to third parties: Apollo Gateway's own metrics reporting (to Apollo's
 * servers, flushed at shutdown and hourly) stays off unless an operator opts in.
 */
import http from 'node:http';
import https from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeServices } from '@apollo/composition';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFederationFixture, type RunningFixture } from './fixtures/federation-subgraphs.js';
import { postGraphQL, startTestGateway, testGatewayConfig, tokenFor } from './harness/mesh.js';

let fixture: RunningFixture;
let dir: string;

beforeAll(async () => {
  fixture = await startFederationFixture();
  dir = await mkdtemp(join(tmpdir(), 'egress-'));
});

afterAll(async () => {
  await fixture?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('egress', () => {
  it('a gateway that starts, serves and stops calls no host but its subgraphs', async () => {
    const result = composeServices(fixture.subgraphs.map(({ name, url, typeDefs }) => ({ name, url, typeDefs })));
    const path = join(dir, 'supergraph.graphql');
    await writeFile(path, result.supergraphSdl!);
    const hosts: string[] = [];
    const record = (target: unknown) => {
      const location = target as string | URL | { hostname?: string; host?: string };
      hosts.push(typeof location === 'string' || location instanceof URL ? new URL(location).hostname : String(location.hostname ?? location.host));
    };
    const originals = { http: http.request, https: https.request };
    const spy = (original: (...args: unknown[]) => http.ClientRequest) =>
      ((...args: unknown[]) => {
        record(args[0]);
        return original(...args);
      }) as typeof http.request;
    http.request = spy(originals.http as (...args: unknown[]) => http.ClientRequest);
    https.request = spy(originals.https as (...args: unknown[]) => http.ClientRequest);
    try {
      const gateway = await startTestGateway(testGatewayConfig({ dataDir: dir, supergraph: { kind: 'file', path, pollMs: 1_000, unclassified: 'allow' } }));
      await gateway.ready;
      const { body } = await postGraphQL(gateway.url, '{ products { name } }', undefined, { authorization: `Bearer ${tokenFor()}` });
      expect(body.errors).toBeUndefined();
      await gateway.stop();
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      http.request = originals.http;
      https.request = originals.https;
    }
    expect(hosts.filter((host) => host !== '127.0.0.1' && host !== 'localhost')).toEqual([]);
    expect(process.env.APOLLO_TELEMETRY_DISABLED).toBe('true');
  });
});
