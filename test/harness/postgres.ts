/**
 * The PostgreSQL server tests use: this machine's (trust authentication), or TEST_POSTGRES_URL.
 */
import pg from 'pg';

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
