/**
 * The audit trail: one record per operation per subgraph (what each field resolution decided), one
 * per operation at the gateway (who asked what, and how it ended), all sharing the request id.
 *
 * Records are appended to a hash-chained JSON Lines file per service: each line carries its
 * sequence number and the hash of the previous line, so changing or deleting a line breaks the
 * chain at that line (`verifyAuditLog`). Writes go through one queue per file, in order. A record
 * that cannot be written is kept and written before the next one, or at close: none is dropped.
 */
import { createHash } from 'node:crypto';
import { closeSync, fdatasync, fdatasyncSync, fstatSync, openSync, statSync, writeSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { checkpointLine, DEV_AUDIT_SIGNING_KEY, FIRST_CHECKPOINT, signCheckpoint, type Checkpoint } from './audit-checkpoints.js';

export type FactDecision = 'allow' | 'mask' | 'deny' | 'would-deny' | 'would-mask';

/** What happened to one field in one operation: never a value, only how many. */
export interface AuditFact {
  readonly coordinate: string;
  readonly decision: FactDecision;
  readonly rule: string;
  readonly strategy?: string;
  /** How many values (rows) the decision applied to. */
  readonly count: number;
}

interface Who {
  readonly subject: string | null;
  readonly roles: readonly string[];
  readonly purpose: string | null;
}

export interface SubgraphAuditRecord extends Who {
  readonly kind: 'subgraph-operation';
  readonly service: string;
  readonly requestId: string;
  readonly at: string;
  readonly operationName: string | null;
  /** The record was written durably before the data left (it held strict-mode data). */
  readonly strict: boolean;
  readonly facts: readonly AuditFact[];
}

export interface GatewayAuditRecord extends Who {
  readonly kind: 'gateway-operation';
  readonly service: 'gateway';
  readonly requestId: string;
  readonly at: string;
  /** The `apollographql-client-name` header. */
  readonly clientName: string | null;
  readonly operationName: string | null;
  /** sha256 of the document and of the variables: what was asked, without its values. */
  readonly documentHash: string | null;
  readonly variablesHash: string | null;
  /** `refused`: stopped before planning by a limit, the cost budget, the rate limit or load shedding. */
  readonly outcome: 'success' | 'partial' | 'error' | 'refused';
  /** The code of the refusal (`MAX_DEPTH_EXCEEDED`, `RATE_LIMITED`, …), when `outcome` is `refused`. */
  readonly refusal?: string;
  /** Why, when the code alone does not say (a refused token: `TOKEN_EXPIRED`, `UNKNOWN_KEY`, …). */
  readonly reason?: string;
  /** Refused tokens not recorded one by one since the previous such record (rate-limited). */
  readonly suppressed?: number;
  /** `hit`: answered from the gateway's response cache (no subgraph was asked). */
  readonly cache?: 'hit';
  /** The subscription event this operation resolved for its subscriber: the field, and the event's position. */
  readonly subscriptionEvent?: { readonly field: string; readonly position: string };
  readonly durationMs: number;
}

/** A write to the registry through its API (gateway/registry/api.ts), accepted or not: who, as their token says. */
export interface RegistryAuditRecord extends Who {
  readonly kind: 'registry-write';
  readonly service: string;
  readonly requestId: string;
  readonly at: string;
  /** The teams the token acts for. */
  readonly teams: readonly string[];
  readonly action: 'publish' | 'rollback' | 'remove' | 'set-owner' | 'register-documents';
  readonly subgraph: string | null;
  readonly client: string | null;
  /** `unauthenticated` and `forbidden`: refused before any check; `refused`: a check said no; `failed`: the write could not be made. */
  readonly outcome: 'accepted' | 'unchanged' | 'refused' | 'forbidden' | 'unauthenticated' | 'failed';
  /** The version written. */
  readonly version?: number;
  /** The team it was written for (or set as owner). */
  readonly team?: string;
  /** The error code and message of a refusal. */
  readonly reason?: string;
}

export type AuditRecord = SubgraphAuditRecord | GatewayAuditRecord | RegistryAuditRecord;

/** A line of the log: the record, its place in the chain, and its hash. */
export type ChainedRecord = AuditRecord & { readonly seq: number; readonly prev: string; readonly hash: string };

export const GENESIS = '0'.repeat(64);

export interface AuditSink {
  /** Appends a record; with `durable`, resolves only once it is on disk (fsync). */
  append(record: AuditRecord, options?: { readonly durable?: boolean }): Promise<void>;
  /** Records that failed to write and wait for the next attempt. */
  readonly pending: number;
  /** Writes failed so far. */
  readonly failures: number;
  /** Records written so far. */
  readonly written: number;
  /** Writes what is pending; what still cannot be written is handed to `onUnwritten`. */
  close(): Promise<void>;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The line for a record: the hash covers the exact JSON of everything before it. */
export function chainLine(record: AuditRecord, seq: number, prev: string): { line: string; hash: string } {
  const body = JSON.stringify({ ...record, seq, prev });
  const hash = sha256(body);
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, hash };
}

export type VerifyResult =
  | {
      readonly ok: true;
      readonly records: number;
      readonly lastHash: string;
      /** The sequence number of its first record (above 1 when it continues an earlier, rotated file). */
      readonly firstSeq: number;
      readonly lastSeq: number;
      /** Each record's sequence number and hash, for the checkpoints. */
      readonly entries: readonly { readonly seq: number; readonly hash: string }[];
    }
  | { readonly ok: false; readonly records: number; readonly line: number; readonly reason: string };

/**
 * Checks a log's chain; reports the first line that is not what the chain says it must be. A log
 * continues `after` (the end of the file before it, after a rotation) when given; without it, a log
 * whose first record is not seq 1 is checked from that record on (an earlier file holds the rest).
 */
export function verifyAuditLog(text: string, after?: { readonly seq: number; readonly hash: string }): VerifyResult {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  let prev = after?.hash ?? GENESIS;
  let expected = (after?.seq ?? 0) + 1;
  const entries: { seq: number; hash: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const broken = (reason: string): VerifyResult => ({ ok: false, records: i, line: i + 1, reason });
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return broken('not a JSON record');
    }
    const { hash, ...body } = parsed;
    if (i === 0 && !after && typeof body.seq === 'number' && body.seq > 1 && typeof body.prev === 'string') {
      // A rotated file's successor: it starts where the earlier file ended.
      expected = body.seq;
      prev = body.prev;
    }
    if (body.seq !== expected) return broken(`sequence ${String(body.seq)} where ${expected} was due (a line was removed or added)`);
    if (body.prev !== prev) return broken('it does not link to the line before it');
    if (typeof hash !== 'string' || sha256(JSON.stringify(body)) !== hash) return broken('its content does not match its hash (it was changed)');
    prev = hash;
    entries.push({ seq: expected, hash });
    expected += 1;
  }
  return { ok: true, records: lines.length, lastHash: prev, firstSeq: entries[0]?.seq ?? 0, lastSeq: expected - 1, entries };
}

export interface FileSinkOptions {
  readonly path: string;
  /** The key checkpoints are signed with (see audit-checkpoints.ts; default the development key). */
  readonly signingKey?: string;
  /** How often a checkpoint is written while records arrive (default 60000 ms); also at rotation and at close. */
  readonly checkpointIntervalMs?: number;
  /** Where records go that cannot be written even at close (default: stderr, as JSON lines). */
  readonly onUnwritten?: (records: readonly AuditRecord[]) => void;
}

/** The last sequence number and hash of an existing log, to continue its chain. */
async function chainTail(path: string): Promise<{ seq: number; hash: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { seq: 0, hash: GENESIS };
  }
  const last = text.trimEnd().split('\n').at(-1);
  if (!last) return { seq: 0, hash: GENESIS };
  const { seq, hash } = JSON.parse(last) as { seq: number; hash: string };
  return { seq, hash };
}

/** The signature of the last checkpoint in a checkpoints file, to continue their links. */
async function lastCheckpoint(path: string): Promise<{ signature: string; seq: number }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { signature: FIRST_CHECKPOINT, seq: 0 };
  }
  const last = text.trimEnd().split('\n').at(-1);
  if (!last) return { signature: FIRST_CHECKPOINT, seq: 0 };
  const { signature, seq } = JSON.parse(last) as Checkpoint;
  return { signature, seq };
}

/** Where the signed checkpoints of a log file are written. */
export const checkpointsPathOf = (logPath: string): string => `${logPath}.checkpoints.jsonl`;

/** The append-only JSON Lines sink, one file per service, with signed checkpoints beside it. */
export async function openFileAuditSink(options: FileSinkOptions): Promise<AuditSink> {
  await mkdir(dirname(options.path), { recursive: true });
  let { seq, hash } = await chainTail(options.path);
  const signingKey = options.signingKey ?? DEV_AUDIT_SIGNING_KEY;
  const intervalMs = options.checkpointIntervalMs ?? 60_000;
  const checkpointsPath = checkpointsPathOf(options.path);
  let checkpointed = await lastCheckpoint(checkpointsPath);
  let checkpointedAt = Date.now();
  // Small synchronous appends, like the log's; a checkpoint is durable (fsync) before it counts.
  const writeCheckpoint = (reason: Checkpoint['reason']): void => {
    if (seq === checkpointed.seq) return;
    const checkpoint = signCheckpoint(signingKey, { seq, hash, at: new Date().toISOString(), reason, previous: checkpointed.signature });
    const file = openSync(checkpointsPath, 'a');
    try {
      writeSync(file, `${checkpointLine(checkpoint)}\n`);
      fdatasyncSync(file);
    } finally {
      closeSync(file);
    }
    checkpointed = { signature: checkpoint.signature, seq };
    checkpointedAt = Date.now();
  };

  // The file stays open, and small appends are written synchronously (into the page cache, in
  // microseconds, without taking a libuv thread from the warehouse's queries); only a durable
  // write waits for the disk. Before each write the path is checked to still be the open file: an
  // audit file moved away or replaced (rotation, a failing disk) is noticed at once, never written
  // to as an unlinked inode.
  let fd: number | null = null;
  let inode: number | null = null;
  const openFile = (): number => {
    if (fd !== null) {
      const current = statSync(options.path, { throwIfNoEntry: false });
      if (current?.isFile() && current.ino === inode) return fd;
      closeSync(fd);
      fd = null;
      // The file was rotated away: vouch for where its chain ended before the next file starts.
      writeCheckpoint('rotation');
    }
    const opened = openSync(options.path, 'a');
    try {
      const stats = fstatSync(opened);
      if (!stats.isFile()) throw new Error(`${options.path} is not a file`);
      inode = stats.ino;
    } catch (error) {
      closeSync(opened);
      throw error;
    }
    fd = opened;
    return opened;
  };

  const writeAll = async (records: readonly AuditRecord[], durable: boolean): Promise<void> => {
    let nextSeq = seq;
    let nextHash = hash;
    const lines: string[] = [];
    for (const record of records) {
      nextSeq += 1;
      const chained = chainLine(record, nextSeq, nextHash);
      lines.push(chained.line);
      nextHash = chained.hash;
    }
    const file = openFile();
    writeSync(file, `${lines.join('\n')}\n`);
    if (durable) await new Promise<void>((resolve, reject) => fdatasync(file, (error) => (error ? reject(error) : resolve())));
    seq = nextSeq;
    hash = nextHash;
    if (Date.now() - checkpointedAt >= intervalMs) writeCheckpoint('interval');
  };

  return queuedSink({
    writeAll,
    onUnwritten: options.onUnwritten,
    finish: () => {
      if (fd !== null) closeSync(fd);
      fd = null;
      try {
        writeCheckpoint('shutdown');
      } catch (error) {
        process.stderr.write(`audit checkpoint not written at shutdown: ${error instanceof Error ? error.message : String(error)}\n`);
      }
    },
  });
}

/**
 * The write discipline every sink shares: one write at a time, in order; a record that cannot be
 * written waits and goes first with the next one; at close, what still cannot be written is handed
 * to `onUnwritten` (stderr by default), never dropped.
 */
export function queuedSink(options: {
  writeAll: (records: readonly AuditRecord[], durable: boolean) => Promise<void>;
  onUnwritten?: ((records: readonly AuditRecord[]) => void) | undefined;
  finish: () => void | Promise<void>;
}): AuditSink {
  const waiting: AuditRecord[] = [];
  let failures = 0;
  let written = 0;
  let queue: Promise<void> = Promise.resolve();
  const writeAll = async (records: readonly AuditRecord[], durable: boolean) => {
    await options.writeAll(records, durable);
    written += records.length;
  };
  return {
    get pending() {
      return waiting.length;
    },
    get failures() {
      return failures;
    },
    get written() {
      return written;
    },
    append(record, { durable = false } = {}) {
      const attempt = queue.then(async () => {
        const batch = [...waiting, record];
        try {
          await writeAll(batch, durable);
          waiting.length = 0;
        } catch (error) {
          failures += 1;
          waiting.push(record);
          throw error;
        }
      });
      queue = attempt.catch(() => undefined);
      return attempt;
    },
    async close() {
      await queue;
      try {
        if (waiting.length > 0) {
          await writeAll(waiting, true);
          waiting.length = 0;
        }
      } catch {
        const unwritten = waiting.splice(0);
        (options.onUnwritten ?? ((records) => records.forEach((r) => process.stderr.write(`UNWRITTEN AUDIT RECORD ${JSON.stringify(r)}\n`))))(unwritten);
      } finally {
        await options.finish();
      }
    },
  };
}

/** Counts the facts of one operation in memory; one record is made of them at its end. */
export class AuditCollector {
  readonly #facts = new Map<string, { -readonly [K in keyof AuditFact]: AuditFact[K] }>();
  /** Response paths of strict-mode values, to withhold if their record cannot be written. */
  readonly strictPaths: (readonly (string | number)[])[] = [];

  /** The fact of this field and decision, to count into (`fact.count += 1` per value). */
  fact(coordinate: string, decision: FactDecision, rule: string, strategy?: string): { count: number } {
    const key = `${coordinate}\u0000${decision}\u0000${rule}\u0000${strategy ?? ''}`;
    let fact = this.#facts.get(key);
    if (!fact) {
      fact = { coordinate, decision, rule, ...(strategy ? { strategy } : {}), count: 0 };
      this.#facts.set(key, fact);
    }
    return fact;
  }

  count(coordinate: string, decision: FactDecision, rule: string, strategy?: string): void {
    this.fact(coordinate, decision, rule, strategy).count += 1;
  }

  /** The facts counted so far, in the order of their keys (coordinate, decision, rule, strategy). */
  facts(): AuditFact[] {
    return [...this.#facts.entries()]
      .filter(([, fact]) => fact.count > 0)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, fact]) => ({ ...fact }));
  }
}

/** The longest name (subject, client, operation) a record keeps as it is. */
export const MAX_AUDITED_NAME = 128;

/**
 * A caller-chosen name as a record keeps it: as it is up to 128 characters; longer, its first 64 and
 * a hash of the whole, so that no request can bloat the log and a long name is still identifiable.
 */
export function boundedName(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (value.length <= MAX_AUDITED_NAME) return value;
  return `${value.slice(0, 64)}…sha256:${sha256(value).slice(0, 16)}`;
}

/**
 * A document's or variables' hash for the record: what was asked, without the values. Null for a
 * value that cannot be serialised (variables nested thousands deep overflow JSON.stringify): a
 * refusal of such a request is still recorded.
 */
export function hashOf(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return sha256(value);
  try {
    return sha256(JSON.stringify(value));
  } catch (error) {
    if (error instanceof RangeError) return null;
    throw error;
  }
}
