/**
 * Which audit sink a service writes to: PostgreSQL when `AUDIT_URL` is set (one table, a chain per
 * service), else a JSON Lines file per service in `AUDIT_DIR`.
 */
import { join } from 'node:path';
import { openFileAuditSink, type AuditSink } from './audit.js';
import { openPostgresAuditSink } from './audit-postgres-sink.js';
import { auditSigningKeyFromEnv } from './audit-checkpoints.js';

export async function openAuditSinkFromEnv(options: {
  readonly service: string;
  /** The folder of file logs when AUDIT_DIR is not set. */
  readonly defaultDir: string;
  readonly env?: NodeJS.ProcessEnv;
}): Promise<AuditSink> {
  const env = options.env ?? process.env;
  if (env.AUDIT_URL) return openPostgresAuditSink({ connectionString: env.AUDIT_URL, service: options.service, signingKey: auditSigningKeyFromEnv(env) });
  return openFileAuditSink({ path: join(env.AUDIT_DIR || options.defaultDir, `${options.service}.jsonl`), signingKey: auditSigningKeyFromEnv(env) });
}
