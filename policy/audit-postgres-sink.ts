/**
 * The PostgreSQL audit sink: the same hash-chained lines as the file sink, one chain per service,
 * in a table that is append-only (triggers refuse UPDATE, DELETE and TRUNCATE, whoever asks; the
 * services' database role should only be granted INSERT and SELECT on it).
 *
 * Triggers stop a service's own role, not whoever owns the database: an owner can switch them off
 * and cut or rewrite the chain (its hash is unkeyed). So, as the file sink does, the sink writes
 * signed checkpoints (see audit-checkpoints.ts), one chain of them per service in the append-only
 * table `audit_checkpoints`: in the transaction of a write when the last checkpoint is older than
 * the interval, and at close. `npm run audit:verify -- postgres://…` checks every service's chain
 * against them.
 *
 * Writers of one service (several replicas) are serialised by an advisory lock, and each write
 * reads the chain's tail (and its last checkpoint) inside its transaction, so both chains stay
 * whole. A committed write is durable (synchronous commit), so every append counts as durable.
 */
import pg from 'pg';
import { checkOut } from './pg-checkout.js';
import { checkpointLine, DEV_AUDIT_SIGNING_KEY, FIRST_CHECKPOINT, signCheckpoint, type Checkpoint } from './audit-checkpoints.js';
import { chainLine, GENESIS, queuedSink, type AuditRecord, type AuditSink } from './audit.js';

export interface PostgresSinkOptions {
  readonly connectionString: string;
  /** The service whose chain this sink writes (`gateway`, `customers`, …). */
  readonly service: string;
  /** The schema of the audit table (default `audit`). */
  readonly schema?: string;
  /** The key checkpoints are signed with (default the development key). */
  readonly signingKey?: string;
  /** How old the last checkpoint may get while records arrive (default 60000 ms); one is also written at close. */
  readonly checkpointIntervalMs?: number;
  readonly onUnwritten?: (records: readonly AuditRecord[]) => void;
}

function ident(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`"${name}" is not a plain SQL identifier.`);
  return `"${name}"`;
}

/** DDL that makes a table append-only: UPDATE, DELETE and TRUNCATE raise, whoever asks. */
function appendOnly(schema: string, table: string): string {
  return `
    DROP TRIGGER IF EXISTS ${table}_append_only ON ${schema}.${table};
    CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${schema}.${table}
      FOR EACH ROW EXECUTE FUNCTION ${schema}.refuse_change();
    DROP TRIGGER IF EXISTS ${table}_no_truncate ON ${schema}.${table};
    CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${schema}.${table}
      FOR EACH STATEMENT EXECUTE FUNCTION ${schema}.refuse_change();`;
}

/** Creates the audit tables (the log and its checkpoints) and their append-only triggers (idempotent). */
export async function installAuditTable(client: pg.ClientBase, schema = 'audit'): Promise<void> {
  const s = ident(schema);
  // Replicas start together: one installs at a time (concurrent DDL on the same objects fails).
  await client.query(`
    BEGIN;
    SELECT pg_advisory_xact_lock(hashtext('audit:install:${schema}'));
    CREATE SCHEMA IF NOT EXISTS ${s};
    CREATE TABLE IF NOT EXISTS ${s}.audit_log (
      service text NOT NULL,
      seq bigint NOT NULL,
      line text NOT NULL,
      hash text NOT NULL,
      written_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (service, seq)
    );
    CREATE OR REPLACE FUNCTION ${s}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP; END $$;
    CREATE TABLE IF NOT EXISTS ${s}.audit_checkpoints (
      service text NOT NULL,
      n bigint NOT NULL,
      seq bigint NOT NULL,
      line text NOT NULL,
      written_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (service, n)
    );
    ${['audit_log', 'audit_checkpoints'].map((table) => appendOnly(s, table)).join('\n')}
    COMMIT;
  `).catch(async (error: unknown) => {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  });
}

/** A service's chain, in order: the lines `verifyAuditLog` checks. */
export async function readAuditLines(client: pg.ClientBase, service: string, schema = 'audit'): Promise<string[]> {
  const { rows } = await client.query<{ line: string }>(`SELECT line FROM ${ident(schema)}.audit_log WHERE service = $1 ORDER BY seq`, [service]);
  return rows.map((row) => row.line);
}

/** A service's signed checkpoints, in order, as `verifyCheckpoints` reads them (one JSON line each). */
export async function readCheckpointLines(client: pg.ClientBase, service: string, schema = 'audit'): Promise<string[]> {
  const { rows } = await client.query<{ line: string }>(`SELECT line FROM ${ident(schema)}.audit_checkpoints WHERE service = $1 ORDER BY n`, [service]);
  return rows.map((row) => row.line);
}

export async function openPostgresAuditSink(options: PostgresSinkOptions): Promise<AuditSink> {
  const schema = ident(options.schema ?? 'audit');
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 2, connectionTimeoutMillis: 5_000 });
  pool.on('error', () => undefined); // a dropped idle connection is replaced on the next write
  const setup = await pool.connect();
  try {
    await installAuditTable(setup, options.schema ?? 'audit');
  } finally {
    setup.release();
  }

  const signingKey = options.signingKey ?? DEV_AUDIT_SIGNING_KEY;
  const intervalMs = options.checkpointIntervalMs ?? 60_000;
  /** When the newest checkpoint this sink knows of (its own or another replica's) was written. */
  let lastCheckpointAt = Number.NEGATIVE_INFINITY;

  /**
   * In one transaction, under the service's lock: appends the records to the chain, then writes a
   * checkpoint of where the chain now is when `reason` asks for one (`shutdown`), or when the last
   * checkpoint is older than the interval.
   */
  const write = async (records: readonly AuditRecord[], reason: Checkpoint['reason'] | null): Promise<void> => {
    // A connection killed between two queries is noted, never an uncaught error (pg-checkout.ts).
    const { client, release } = await checkOut(pool);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`audit:${options.service}`]);
      const tail = await client.query<{ seq: string; hash: string }>(
        `SELECT seq, hash FROM ${schema}.audit_log WHERE service = $1 ORDER BY seq DESC LIMIT 1`,
        [options.service],
      );
      let seq = Number(tail.rows[0]?.seq ?? 0);
      let hash = tail.rows[0]?.hash ?? GENESIS;
      for (const record of records) {
        seq += 1;
        const chained = chainLine(record, seq, hash);
        await client.query(`INSERT INTO ${schema}.audit_log (service, seq, line, hash) VALUES ($1, $2, $3, $4)`, [
          options.service,
          seq,
          chained.line,
          chained.hash,
        ]);
        hash = chained.hash;
      }
      // Most writes come well within the interval of the last checkpoint this sink knows of: they
      // do not read the checkpoints at all. Past it (or at shutdown), the last one is read under the
      // lock, since another replica may have written it.
      let checkpointed: number | null = null;
      if (reason !== null || Date.now() - lastCheckpointAt >= intervalMs) {
        const last = await client.query<{ n: string; seq: string; line: string }>(
          `SELECT n, seq, line FROM ${schema}.audit_checkpoints WHERE service = $1 ORDER BY n DESC LIMIT 1`,
          [options.service],
        );
        const previous = last.rows[0] ? (JSON.parse(last.rows[0].line) as Checkpoint) : null;
        const due = reason !== null || !previous || Date.now() - Date.parse(previous.at) >= intervalMs;
        checkpointed = previous ? Date.parse(previous.at) : null;
        if (due && seq > Number(previous?.seq ?? 0)) {
          const checkpoint = signCheckpoint(signingKey, {
            seq,
            hash,
            at: new Date().toISOString(),
            reason: reason ?? 'interval',
            previous: previous?.signature ?? FIRST_CHECKPOINT,
          });
          await client.query(`INSERT INTO ${schema}.audit_checkpoints (service, n, seq, line) VALUES ($1, $2, $3, $4)`, [
            options.service,
            Number(last.rows[0]?.n ?? 0) + 1,
            seq,
            checkpointLine(checkpoint),
          ]);
          checkpointed = Date.parse(checkpoint.at);
        }
      }
      await client.query('COMMIT');
      if (checkpointed !== null) lastCheckpointAt = checkpointed;
    } catch (error) {
      broken = error instanceof Error ? error : new Error(String(error));
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      // A connection that failed is discarded, not handed to the next write.
      release(broken);
    }
  };

  return queuedSink({
    writeAll: (records) => write(records, null),
    onUnwritten: options.onUnwritten,
    async finish() {
      try {
        await write([], 'shutdown');
      } catch (error) {
        process.stderr.write(`audit checkpoint not written at shutdown: ${error instanceof Error ? error.message : String(error)}\n`);
      } finally {
        await pool.end();
      }
    },
  });
}
