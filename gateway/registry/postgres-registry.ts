/**
 * The registry in a PostgreSQL schema (`REGISTRY_URL=postgres://…?schema=registry`), for a gateway
 * fleet and CI runners that share one registry.
 *
 * Tables: `subgraph_versions` (every published version), `state` (one row: the serving versions
 * and the supergraph), `usage` (per client and coordinate), `client_documents` and `owners` (each
 * owned subgraph's team). A publish runs
 * in one transaction under an advisory lock, so concurrent publishes are checked one after the
 * other and a failed one writes nothing.
 */
import pg from 'pg';
import { checkOut } from '../../policy/pg-checkout.js';
import { RegistryError } from './codes.js';
import {
  assertClientName,
  assertSubgraphName,
  mergeUsage,
  sdlHash,
  type ClientDocument,
  type Registry,
  type RegistryState,
  type SubgraphOwner,
  type SubgraphVersion,
  type UsageRecord,
} from './registry.js';

function ident(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new RegistryError('REGISTRY_UNAVAILABLE', `"${name}" is not a plain SQL identifier.`);
  return `"${name}"`;
}

interface VersionRow {
  name: string;
  version: number;
  url: string;
  sdl: string;
  sdl_hash: string;
  published_by: string;
  published_at: Date;
  note: string | null;
  data_products: SubgraphVersion['dataProducts'];
}

const toVersion = (row: VersionRow): SubgraphVersion => ({
  name: row.name,
  version: row.version,
  url: row.url,
  sdl: row.sdl,
  sdlHash: row.sdl_hash,
  publishedBy: row.published_by,
  publishedAt: row.published_at.toISOString(),
  note: row.note,
  dataProducts: row.data_products ?? null,
});

/** The URL without its password, for reports and logs. */
export function redactedUrl(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

export async function openPostgresRegistry(options: { connectionString: string; schema?: string }): Promise<Registry> {
  const schema = options.schema ?? 'registry';
  const s = ident(schema);
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 4 });
  // An idle connection the server drops (a restart, a terminated backend) errs on the pool: it is
  // replaced on the next use, never an uncaught error that stops the gateway polling this registry.
  pool.on('error', () => undefined);
  const unavailable = (error: unknown): never => {
    if (error instanceof RegistryError) throw error;
    throw new RegistryError('REGISTRY_UNAVAILABLE', `The registry at ${redactedUrl(options.connectionString)} failed: ${(error as Error).message}`, { cause: error });
  };
  const inTransaction = async <T>(lockKey: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const { client, release } = await checkOut(pool).catch(unavailable);
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`registry:${schema}:${lockKey}`]);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      return unavailable(error);
    } finally {
      release();
    }
  };

  await inTransaction('install', async (client) => {
    await client.query(`
      CREATE SCHEMA IF NOT EXISTS ${s};
      CREATE TABLE IF NOT EXISTS ${s}.subgraph_versions (
        name text NOT NULL,
        version integer NOT NULL,
        url text NOT NULL,
        sdl text NOT NULL,
        sdl_hash text NOT NULL,
        published_by text NOT NULL,
        published_at timestamptz NOT NULL DEFAULT now(),
        note text,
        PRIMARY KEY (name, version)
      );
      -- Added with data product documents: a registry made before has none for its older versions.
      ALTER TABLE ${s}.subgraph_versions ADD COLUMN IF NOT EXISTS data_products jsonb;
      CREATE TABLE IF NOT EXISTS ${s}.state (
        id integer PRIMARY KEY CHECK (id = 1),
        revision integer NOT NULL,
        versions jsonb NOT NULL,
        supergraph_sdl text NOT NULL,
        api_schema_sdl text NOT NULL,
        supergraph_version text NOT NULL,
        composed_at timestamptz NOT NULL
      );
      CREATE TABLE IF NOT EXISTS ${s}.usage (
        client text NOT NULL,
        coordinate text NOT NULL,
        count bigint NOT NULL,
        last_seen timestamptz NOT NULL,
        PRIMARY KEY (client, coordinate)
      );
      CREATE TABLE IF NOT EXISTS ${s}.client_documents (
        client text NOT NULL,
        name text NOT NULL,
        body text NOT NULL,
        registered_by text NOT NULL,
        registered_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (client, name)
      );
      CREATE TABLE IF NOT EXISTS ${s}.owners (
        name text PRIMARY KEY,
        team text NOT NULL,
        set_by text NOT NULL,
        set_at timestamptz NOT NULL DEFAULT now()
      );
    `);
  });

  const readState = async (client: pg.ClientBase): Promise<RegistryState | null> => {
    const { rows } = await client.query<{
      revision: number;
      versions: Record<string, number>;
      supergraph_sdl: string;
      api_schema_sdl: string;
      supergraph_version: string;
      composed_at: Date;
    }>(`SELECT * FROM ${s}.state WHERE id = 1`);
    const row = rows[0];
    if (!row) return null;
    const pairs = Object.entries(row.versions);
    const versions = await client.query<VersionRow>(
      `SELECT * FROM ${s}.subgraph_versions v JOIN unnest($1::text[], $2::int[]) AS current(name, version) USING (name, version) ORDER BY name`,
      [pairs.map(([name]) => name), pairs.map(([, version]) => version)],
    );
    return {
      revision: row.revision,
      subgraphs: versions.rows.map(toVersion),
      supergraphSdl: row.supergraph_sdl,
      apiSchemaSdl: row.api_schema_sdl,
      supergraphVersion: row.supergraph_version,
      composedAt: row.composed_at.toISOString(),
    };
  };

  const readOwners = async (client: pg.ClientBase | pg.Pool): Promise<Record<string, SubgraphOwner>> => {
    const { rows } = await client.query<{ name: string; team: string; set_by: string; set_at: Date }>(`SELECT * FROM ${s}.owners ORDER BY name`);
    return Object.fromEntries(rows.map((row) => [row.name, { team: row.team, setBy: row.set_by, setAt: row.set_at.toISOString() }]));
  };
  const writeOwner = (client: pg.ClientBase, name: string, owner: Omit<SubgraphOwner, 'setAt'>) =>
    client.query(
      `INSERT INTO ${s}.owners (name, team, set_by) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET team = excluded.team, set_by = excluded.set_by, set_at = now()`,
      [assertSubgraphName(name), owner.team, owner.setBy],
    );
  const writeState = (client: pg.ClientBase, revision: number, versions: Record<string, number>, supergraph: { supergraphSdl: string; apiSchemaSdl: string; supergraphVersion: string }, at: Date) =>
    client.query(
      `INSERT INTO ${s}.state (id, revision, versions, supergraph_sdl, api_schema_sdl, supergraph_version, composed_at)
       VALUES (1, $1, $2, $3, $4, $5, $6)
       ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, versions = excluded.versions,
         supergraph_sdl = excluded.supergraph_sdl, api_schema_sdl = excluded.api_schema_sdl,
         supergraph_version = excluded.supergraph_version, composed_at = excluded.composed_at`,
      [revision, JSON.stringify(versions), supergraph.supergraphSdl, supergraph.apiSchemaSdl, supergraph.supergraphVersion, at],
    );

  return {
    location: redactedUrl(options.connectionString),
    owners: () => readOwners(pool).catch(unavailable),
    state: () => checkOut(pool).then(async ({ client, release }) => {
      try {
        return await readState(client);
      } finally {
        release();
      }
    }, unavailable),
    async revision() {
      const { rows } = await pool.query<{ revision: number }>(`SELECT revision FROM ${s}.state WHERE id = 1`).catch(unavailable);
      return rows[0]?.revision ?? 0;
    },
    async history(name) {
      assertSubgraphName(name);
      const { rows } = await pool
        .query<VersionRow>(`SELECT * FROM ${s}.subgraph_versions WHERE name = $1 ORDER BY version DESC`, [name])
        .catch(unavailable);
      return rows.map(toVersion);
    },
    transaction: (work) =>
      inTransaction('publish', async (client) => {
        const state = await readState(client);
        const { commit, result } = await work(state, await readOwners(client));
        if (!commit) return { result, written: null };
        if ('setOwner' in commit) {
          await writeOwner(client, commit.setOwner, commit.owner);
          return { result, written: null };
        }
        const serving = Object.fromEntries((state?.subgraphs ?? []).map((v) => [v.name, v.version]));
        if ('remove' in commit) {
          const name = assertSubgraphName(commit.remove);
          if (!(name in serving)) throw new RegistryError('REGISTRY_UNKNOWN_SUBGRAPH', `"${name}" is not in the supergraph.`);
          const { [name]: _removed, ...rest } = serving;
          await writeState(client, state!.revision + 1, rest, commit, new Date());
          return { result, written: null };
        }
        const name = assertSubgraphName(commit.subgraph.name);
        const { rows } = await client.query<VersionRow>(
          `INSERT INTO ${s}.subgraph_versions (name, version, url, sdl, sdl_hash, published_by, note, data_products)
           SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6, $7 FROM ${s}.subgraph_versions WHERE name = $1
           RETURNING *`,
          [name, commit.subgraph.url, commit.subgraph.sdl, sdlHash(commit.subgraph.sdl), commit.subgraph.publishedBy, commit.subgraph.note, commit.subgraph.dataProducts === null ? null : JSON.stringify(commit.subgraph.dataProducts)],
        );
        const inserted = rows[0]!;
        await writeState(client, (state?.revision ?? 0) + 1, { ...serving, [name]: inserted.version }, commit, inserted.published_at);
        if (commit.owner) await writeOwner(client, name, commit.owner);
        return { result, written: toVersion(inserted) };
      }),
    async recordUsage(records) {
      const merged = mergeUsage(records);
      if (merged.length === 0) return;
      await pool
        .query(
          `INSERT INTO ${s}.usage (client, coordinate, count, last_seen)
           SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[])
           ON CONFLICT (client, coordinate) DO UPDATE
             SET count = ${s}.usage.count + excluded.count, last_seen = greatest(${s}.usage.last_seen, excluded.last_seen)`,
          [merged.map((r) => r.client), merged.map((r) => r.coordinate), merged.map((r) => r.count), merged.map((r) => r.lastSeen)],
        )
        .catch(unavailable);
    },
    async usage(since) {
      const { rows } = await pool
        .query<{ client: string; coordinate: string; count: string; last_seen: Date }>(
          `SELECT client, coordinate, count, last_seen FROM ${s}.usage WHERE last_seen >= $1`,
          [since],
        )
        .catch(unavailable);
      return rows.map((row): UsageRecord => ({ client: row.client, coordinate: row.coordinate, count: Number(row.count), lastSeen: row.last_seen.toISOString() }));
    },
    async registerDocuments(documents) {
      for (const document of documents) assertClientName(document.client);
      await inTransaction('documents', async (client) => {
        for (const document of documents) {
          await client.query(
            `INSERT INTO ${s}.client_documents (client, name, body, registered_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (client, name) DO UPDATE SET body = excluded.body, registered_by = excluded.registered_by, registered_at = now()`,
            [document.client, document.name, document.body, document.registeredBy],
          );
        }
      });
    },
    async documents() {
      const { rows } = await pool
        .query<{ client: string; name: string; body: string; registered_by: string; registered_at: Date }>(
          `SELECT * FROM ${s}.client_documents ORDER BY client, name`,
        )
        .catch(unavailable);
      return rows.map((row): ClientDocument => ({
        client: row.client,
        name: row.name,
        body: row.body,
        registeredBy: row.registered_by,
        registeredAt: row.registered_at.toISOString(),
      }));
    },
    close: () => pool.end(),
  };
}
