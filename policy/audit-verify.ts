/**
 * `npm run audit:verify -- <log.jsonl | postgres://…>…`: checks each audit log's hash chain (for a
 * database: every service's chain in its audit table) and reports the first broken link (exit code
 * 1), or how many records verified.
 */
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { verifyAuditLog } from './audit.js';
import { readAuditLines } from './audit-postgres-sink.js';

/** Each service's log in an audit database, as text. */
async function databaseLogs(url: string): Promise<[string, string][]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ service: string }>('SELECT DISTINCT service FROM audit.audit_log ORDER BY service');
    const logs: [string, string][] = [];
    for (const { service } of rows) logs.push([`${new URL(url).pathname.slice(1)}:${service}`, (await readAuditLines(client, service)).join('\n')]);
    return logs;
  } finally {
    await client.end();
  }
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: npm run audit:verify -- <audit log.jsonl> [more logs]');
  process.exit(2);
}
let broken = false;
const logs: [string, string][] = [];
for (const file of files) {
  try {
    if (/^postgres(ql)?:\/\//.test(file)) logs.push(...(await databaseLogs(file)));
    else logs.push([file, await readFile(file, 'utf8')]);
  } catch (error) {
    console.error(`${file.replace(/\/\/[^@/]*@/, '//')}: cannot be read (${error instanceof Error ? error.message : String(error)})`);
    broken = true;
  }
}
for (const [file, text] of logs) {
  const result = verifyAuditLog(text);
  if (result.ok) console.log(`${file}: OK, ${result.records} records, last hash ${result.lastHash}`);
  else {
    broken = true;
    console.log(`${file}: BROKEN at line ${result.line}: ${result.reason} (${result.records} records verified before it)`);
  }
}
process.exit(broken ? 1 : 0);
