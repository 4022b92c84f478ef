/**
 * The PostgreSQL server tests use: this machine's (trust authentication), or TEST_POSTGRES_URL.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';

export const TEST_POSTGRES = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432';

/** Runs statements on one database of the test server (by default `postgres`, to create or drop others). */
export async function onPostgres(statement: string, database = 'postgres'): Promise<void> {
  const client = new pg.Client({ connectionString: `${TEST_POSTGRES}/${database}` });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/**
 * A temporary folder and a PostgreSQL database of the test file's own, made before its tests and
 * removed after them, and a warehouse URL on either dialect in them: `url('duckdb', 'serving')` is a
 * file of the folder, `url('postgres', 'serving')` a schema of the database.
 */
export function warehousesOnEachDialect(prefix: string): { readonly dir: () => string; readonly url: (dialect: 'duckdb' | 'postgres', name: string) => string } {
  let dir = '';
  const database = `${prefix}_${process.pid}_${randomUUID().slice(0, 8)}`;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
    await onPostgres(`CREATE DATABASE ${database}`);
  });
  afterAll(async () => {
    await onPostgres(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await rm(dir, { recursive: true, force: true });
  });
  return {
    dir: () => dir,
    url: (dialect, name) => (dialect === 'duckdb' ? `duckdb:${join(dir, `${name}.duckdb`)}` : `${TEST_POSTGRES}/${database}?schema=${name}`),
  };
}
