/**
 * The gateway speaks GraphQL over HTTP: the `graphql-http` package's server audits (the reference
 * implementation of the GraphQL-over-HTTP specification's MUSTs and SHOULDs) run against it.
 *
 * The audits run as a signed-in caller: anonymous callers get no introspection, which one audit uses.
 * Three SHOULDs are not followed on purpose: with `Accept: application/json`, a document that does
 * not parse, does not validate or has variables that do not coerce is answered with 400, as Apollo
 * Server does (and as the specification requires for `application/graphql-response+json`); BI tools
 * and our error catalogue rely on the status.
 */
import { serverAudits } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestMesh, tokenFor, type TestMesh } from './harness/mesh.js';

describe('GraphQL over HTTP', () => {
  let mesh: TestMesh;
  beforeAll(async () => {
    mesh = await startTestMesh();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it('passes every MUST of the server audits, and every SHOULD but the three status codes it chooses', async () => {
    const authorization = `Bearer ${tokenFor()}`;
    const fetchFn = (input: string | URL | Request, init: RequestInit = {}) =>
      fetch(input, { ...init, headers: { ...Object.fromEntries(new Headers(init.headers).entries()), authorization } });
    const results: { status: string; name: string }[] = [];
    for (const audit of serverAudits({ url: mesh.gateway.url, fetchFn })) {
      const result = await audit.fn();
      results.push({ status: result.status, name: audit.name });
    }
    expect(results.length).toBeGreaterThan(30);
    expect(results.filter((r) => r.status === 'error')).toEqual([]);
    expect(results.filter((r) => r.status === 'warn').map((r) => r.name)).toEqual([
      'SHOULD use 200 status code on document parsing failure when accepting application/json',
      'SHOULD use 200 status code on document validation failure when accepting application/json',
      'SHOULD use a status code of 200 on variable coercion failure when accepting application/json',
    ]);
  });
});
