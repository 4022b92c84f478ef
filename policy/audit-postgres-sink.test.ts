import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecord, auditSinkContract } from '../test/harness/audit-sink-contract.js';
import { onPostgres, TEST_POSTGRES } from '../test/harness/postgres.js';
import { verifyAuditLog } from './audit.js';
import { openPostgresAuditSink, readAuditLines, readCheckpointLines } from './audit-postgres-sink.js';

// A database of this test run's own, dropped afterwards.
const database = `audit_test_${process.pid}_${randomUUID().slice(0, 8)}`;
const url = `${TEST_POSTGRES}/${database}`;


async function lines(service: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await readAuditLines(client, service);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  await onPostgres(`CREATE DATABASE ${database}`);
});

afterAll(async () => {
  await onPostgres(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`).catch(() => undefined);
  await onPostgres(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
});

auditSinkContract('PostgreSQL', {
  open: (log, options) => openPostgresAuditSink({ connectionString: url, service: log, ...options }),
  lines,
  // The database refuses connections and every open one is terminated.
  async breakSink() {
    await onPostgres(`ALTER DATABASE ${database} ALLOW_CONNECTIONS false`);
    await onPostgres(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database}'`);
  },
  async repair() {
    await onPostgres(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`);
  },
});

describe('the PostgreSQL audit log', () => {
  it('is append-only: updates, deletes and truncation are refused', async () => {
    const sink = await openPostgresAuditSink({ connectionString: url, service: 'locked' });
    await sink.append(auditRecord(1));
    await sink.close();
    for (const statement of [
      "UPDATE audit.audit_log SET line = '{}' WHERE service = 'locked'",
      "DELETE FROM audit.audit_log WHERE service = 'locked'",
      'TRUNCATE audit.audit_log',
    ]) {
      await expect(onPostgres(statement, database)).rejects.toThrow(/append-only/);
    }
    expect(await lines('locked')).toHaveLength(1);
  });

  it('keeps one whole chain when two replicas of a service write at once', async () => {
    const [a, b] = await Promise.all([
      openPostgresAuditSink({ connectionString: url, service: 'replicated' }),
      openPostgresAuditSink({ connectionString: url, service: 'replicated' }),
    ]);
    await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).append(auditRecord(i + 1))));
    await Promise.all([a.close(), b.close()]);
    expect(verifyAuditLog((await lines('replicated')).join('\n'))).toMatchObject({ ok: true, records: 60 });
  });

  it('shows a change made behind the triggers\' back, at its line', async () => {
    const sink = await openPostgresAuditSink({ connectionString: url, service: 'tampered' });
    for (let n = 1; n <= 4; n++) await sink.append(auditRecord(n));
    await sink.close();
    // Someone with the table owner's rights disables the guard and edits a record.
    await onPostgres(`ALTER TABLE audit.audit_log DISABLE TRIGGER audit_log_append_only;
      UPDATE audit.audit_log SET line = replace(line, '"count":3', '"count":300') WHERE service = 'tampered' AND seq = 3;
      ALTER TABLE audit.audit_log ENABLE TRIGGER audit_log_append_only;`, database);
    expect(verifyAuditLog((await lines('tampered')).join('\n'))).toMatchObject({ ok: false, line: 3 });
    // The command checks every service's chain of the database, and names the broken one.
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'policy/audit-verify.ts', url], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`${database}:locked: OK, 1 records`));
    expect(run.stdout).toMatch(new RegExp(`${database}:tampered: BROKEN at line 3: its content does not match its hash`));
  });

  it('writes a checkpoint once per interval while records arrive, and one at shutdown', async () => {
    const sink = await openPostgresAuditSink({ connectionString: url, service: 'paced', checkpointIntervalMs: 60_000 });
    for (let n = 1; n <= 10; n++) await sink.append(auditRecord(n));
    const reasons = async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await readCheckpointLines(client, 'paced')).map((line) => JSON.parse(line) as { seq: number; reason: string });
      } finally {
        await client.end();
      }
    };
    expect(await reasons()).toEqual([expect.objectContaining({ seq: 1, reason: 'interval' })]);
    await sink.close();
    expect(await reasons()).toEqual([expect.objectContaining({ seq: 1, reason: 'interval' }), expect.objectContaining({ seq: 10, reason: 'shutdown' })]);
  });
});
