/**
 * `npm run audit:verify -- <log.jsonl | postgres://…>…`: checks each audit log's hash chain (for a
 * database: every service's chain in its audit table) and reports the first broken link (exit code
 * 1), or how many records verified.
 *
 * Rotated files are given oldest first: a file that starts where the one before it ended continues
 * its chain. Each chain is also checked against its signed checkpoints (key `AUDIT_SIGNING_KEY`):
 * a file log's are in `<log>.checkpoints.jsonl`, a database's in its `audit_checkpoints` table. A
 * cut tail, a rewritten chain and a missing or forged checkpoint are reported. `--without-checkpoints`
 * checks the chains alone (the log of a sink that had no key).
 *
 * A checkpoints file named among the logs (as `data/audit/*.jsonl` names them) is not a log: it is
 * checked with the log it belongs to, and said so; named without its log, it is refused (exit 2).
 *
 * Exit codes: 0 every chain and its checkpoints verify, 1 one does not, 2 a log cannot be read or
 * the command line is wrong.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { auditSigningKeyFromEnv, verifyCheckpoints } from './audit-checkpoints.js';
import { checkpointsPathOf, verifyAuditLog } from './audit.js';
import { CommandFailure, defineCommand, EXIT_FAILED, EXIT_OK, EXIT_REFUSED, runCommand } from './command-line.js';
import { readAuditLines, readCheckpointLines } from './audit-postgres-sink.js';

const CHECKPOINTS_SUFFIX = checkpointsPathOf('');
const isCheckpoints = (source: string) => source.endsWith(CHECKPOINTS_SUFFIX) && !/^postgres(ql)?:\/\//.test(source);

/** Each service's log in an audit database, and its checkpoints, as text. */
async function databaseLogs(url: string): Promise<Log[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // A service whose records were all deleted still has its checkpoints: list both.
    const { rows } = await client.query<{ service: string }>('SELECT service FROM audit.audit_log UNION SELECT service FROM audit.audit_checkpoints ORDER BY service');
    const logs: Log[] = [];
    for (const { service } of rows) {
      logs.push({
        name: `${new URL(url).pathname.slice(1)}:${service}`,
        text: (await readAuditLines(client, service)).join('\n'),
        file: false,
        checkpoints: (await readCheckpointLines(client, service)).join('\n'),
      });
    }
    return logs;
  } finally {
    await client.end();
  }
}

interface Log {
  readonly name: string;
  readonly text: string;
  /** A file log (its checkpoints beside it, and rotated files may continue it), not a database's. */
  readonly file: boolean;
  /** A database log's checkpoints, one JSON line each. */
  readonly checkpoints?: string;
}

const command = defineCommand('npm run -s audit:verify --', 'Checks audit logs: each hash chain, and its signed checkpoints (key AUDIT_SIGNING_KEY).')
  .argument('<logs...>', 'audit log files (rotated files oldest first; their .checkpoints.jsonl files may be named too), or postgres:// URLs')
  .option('--without-checkpoints', 'check the chains alone (the log of a sink that had no key)')
  .action(async (sources: string[], options: { withoutCheckpoints?: boolean }) => {
    process.exitCode = await verify(sources, options.withoutCheckpoints === true);
  });


/** One chain: a log and the rotated files that continue it. */
interface Chain {
  readonly files: Log[];
  entries: { seq: number; hash: string }[];
  lastSeq: number;
  lastHash: string;
}

async function verify(given: readonly string[], withoutCheckpoints: boolean): Promise<number> {
  const key = auditSigningKeyFromEnv();
  let broken = false;
  let unreadable = false;
  const logs: Log[] = [];
  // A checkpoints file is checked with its log: set apart, and refused when its log is not named.
  const logPaths = new Set(given.filter((source) => !isCheckpoints(source)).map((source) => resolve(source)));
  const sources: string[] = [];
  for (const source of given) {
    if (!isCheckpoints(source)) sources.push(source);
    else if (logPaths.has(resolve(source.slice(0, -CHECKPOINTS_SUFFIX.length)))) console.log(`${source}: the checkpoints of ${source.slice(0, -CHECKPOINTS_SUFFIX.length)}, checked with it`);
    else throw new CommandFailure(`${source} holds checkpoints, not audit records: name its log (${source.slice(0, -CHECKPOINTS_SUFFIX.length)}), and its checkpoints are checked with it.`);
  }
  for (const source of sources) {
    try {
      if (/^postgres(ql)?:\/\//.test(source)) logs.push(...(await databaseLogs(source)));
      else logs.push({ name: source, text: await readFile(source, 'utf8'), file: true });
    } catch (error) {
      console.error(`${source.replace(/\/\/[^@/]*@/, '//')}: cannot be read (${error instanceof Error ? error.message : String(error)})`);
      unreadable = true;
    }
  }

  const chains: Chain[] = [];
  for (const log of logs) {
    const previous = chains.at(-1);
    const first = log.text.split('\n', 1)[0];
    let continues = false;
    if (previous && log.file && first) {
      try {
        const { seq, prev } = JSON.parse(first) as { seq?: unknown; prev?: unknown };
        continues = seq === previous.lastSeq + 1 && prev === previous.lastHash;
      } catch {
        continues = false;
      }
    }
    const result = verifyAuditLog(log.text, continues ? { seq: previous!.lastSeq, hash: previous!.lastHash } : undefined);
    if (!result.ok) {
      broken = true;
      console.log(`${log.name}: BROKEN at line ${result.line}: ${result.reason} (${result.records} records verified before it)`);
      continue;
    }
    const from = result.firstSeq > 1 ? ` (seq ${result.firstSeq}-${result.lastSeq}${continues ? `, continuing ${previous!.files.at(-1)!.name}` : ', continuing an earlier file not given'})` : '';
    console.log(`${log.name}: OK, ${result.records} records, last hash ${result.lastHash}${from}`);
    if (continues) {
      previous!.files.push(log);
      previous!.entries.push(...result.entries);
      previous!.lastSeq = result.lastSeq;
      previous!.lastHash = result.lastHash;
    } else chains.push({ files: [log], entries: [...result.entries], lastSeq: result.lastSeq, lastHash: result.lastHash });
  }

  /** A chain's checkpoints as text, or null (reported) when it has none. */
  async function checkpointsOf(chain: Chain): Promise<string | null> {
    const first = chain.files[0]!;
    const names = chain.files.map((file) => file.name);
    if (!first.file) {
      if (first.checkpoints) return first.checkpoints;
      console.log(`${first.name}: NO CHECKPOINTS in audit.audit_checkpoints: a cut tail or a rewritten chain would go unseen`);
      return null;
    }
    const checkpointsFile = [...names].reverse().map(checkpointsPathOf).find((path) => existsSync(path));
    if (checkpointsFile) return readFile(checkpointsFile, 'utf8');
    console.log(`${names.join(' + ')}: NO CHECKPOINTS beside it (${checkpointsPathOf(names.at(-1)!)}): a cut tail or a rewritten chain would go unseen`);
    return null;
  }

  for (const chain of chains) {
    if (withoutCheckpoints) continue;
    const names = chain.files.map((file) => file.name);
    const checkpointsText = await checkpointsOf(chain);
    if (checkpointsText === null) {
      broken = true;
      continue;
    }
    const report = verifyCheckpoints({ key, checkpointsText, lines: chain.entries });
    if (!report.ok) {
      broken = true;
      for (const problem of report.problems) console.log(`${names.join(' + ')}: BROKEN: ${problem}`);
    } else {
      const pending = report.unvouched > 0 ? `; ${report.unvouched} records after the last one, not vouched for yet` : '';
      console.log(`${names.join(' + ')}: checkpoints OK, ${report.checkpoints} signed checkpoints${pending}`);
    }
  }
  return unreadable ? EXIT_FAILED : broken ? EXIT_REFUSED : EXIT_OK;
}

await runCommand(command);
