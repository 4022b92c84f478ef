/**
 * The kit's test support (`@data-mesh/kit/testing`): starts a domain as its subgraph runs in the
 * mesh, on a warehouse of its own built from its raw folder (the same gated load, quality checks
 * and profiles as `npm start`), under the full policy layer, and queries it as the gateway would,
 * for principals the test names. Development identity only: refused in production.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { openFileAuditSink } from '../../policy/audit.js';
import { identityConfigFromEnv, mintDevToken } from '../../policy/identity-config.js';
import { DEV_HASH_KEY } from '../../policy/masking.js';
import { SIGNATURE_HEADER, signSubgraphRequest } from '../../policy/subgraph-signature.js';
import type { Domain } from './domain.js';
import { loadFactsAt } from './freshness.js';
import { profilesAt } from './profiles.js';
import { summarizeRun } from './quality.js';
import { startSubgraphServer } from './subgraph-server.js';
import { ensureWarehouse, qualityHistoryAt, QualityGateError } from './warehouse/build.js';
import { openWarehouse } from './warehouse/open.js';

export interface TestPrincipal {
  /** Default `test-user`. */
  readonly subject?: string;
  readonly roles?: readonly string[];
  readonly regions?: readonly string[];
  readonly purpose?: string;
}

export interface TestAnswer<T> {
  readonly data?: T | null;
  readonly errors?: readonly { readonly message: string; readonly path?: readonly (string | number)[]; readonly extensions?: Record<string, unknown> }[];
}

export interface DomainUnderTest {
  /** Its subgraph's endpoint. */
  readonly url: string;
  /** Rows the load took in, per table, and its quality checks' summary. */
  readonly load: { readonly rows: Readonly<Record<string, number>>; readonly checks: string };
  /** Queries the subgraph as the gateway would, for this principal (default: a steward of every region). */
  query<T = Record<string, any>>(query: string, as?: TestPrincipal, variables?: Record<string, unknown>): Promise<TestAnswer<T>>;
  stop(): Promise<void>;
}

/**
 * Builds the domain's warehouse from its raw folder (`data`: a path or a `file:` URL) in a temporary
 * folder and serves it on a free port. A load its quality checks reject fails here, naming them.
 */
export async function startDomainForTest(domain: Domain<any, any>, options: { readonly data: string | URL }): Promise<DomainUnderTest> {
  const rawDir = typeof options.data === 'string' ? options.data : fileURLToPath(options.data);
  const work = await mkdtemp(join(tmpdir(), `domain-${domain.name}-`));
  const url = `duckdb:${join(work, `${domain.name}.duckdb`)}`;
  try {
    const build = await ensureWarehouse({ domain, url, rawDir, sourceFingerprint: 'test' }).catch((error: unknown) => {
      if (error instanceof QualityGateError) throw new Error(`${error.message} (the rejected load is kept at ${error.keptAt ?? work})`);
      throw error;
    });
    const key = randomBytes(32).toString('hex');
    const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    const warehouse = openWarehouse(url);
    const audit = await openFileAuditSink({ path: join(work, 'audit.jsonl') });
    const server = await startSubgraphServer({
      domain,
      warehouse,
      log,
      identity: identityConfigFromEnv(),
      hashKey: DEV_HASH_KEY,
      audit,
      port: 0,
      signature: { key, directAccess: false },
      qualityHistory: await qualityHistoryAt(url),
      loadFacts: await loadFactsAt(url, domain),
      profiles: await profilesAt(url),
    });
    return {
      url: server.url,
      load: { rows: build.rows ?? {}, checks: build.quality ? summarizeRun(build.quality) : '' },
      async query(query, as = {}, variables) {
        const authorization = `Bearer ${mintDevToken({ subject: as.subject ?? 'test-user', roles: as.roles ?? ['steward'], regions: as.regions ?? ['AMERICAS', 'EMEA', 'APAC'], ...(as.purpose ? { purpose: as.purpose } : {}) })}`;
        const body = JSON.stringify({ query, ...(variables ? { variables } : {}) });
        const response = await fetch(server.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization, [SIGNATURE_HEADER]: signSubgraphRequest({ key, body, authorization }) },
          body,
        });
        return (await response.json()) as TestAnswer<any>;
      },
      async stop() {
        await server.stop();
        await audit.close();
        await warehouse.close();
        await rm(work, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    throw error;
  }
}
