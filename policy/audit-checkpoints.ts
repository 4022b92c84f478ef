/**
 * Signed checkpoints of an audit chain, as AWS CloudTrail's digest files are: the hash chain alone
 * shows that a line was changed, but not that the last lines were cut, nor that the whole chain was
 * rewritten and its hashes recomputed (the hash is unkeyed). A checkpoint says "this log had reached
 * sequence N with hash H", signed with `AUDIT_SIGNING_KEY` (HMAC-SHA256, a key the auditors hold),
 * and links to the checkpoint before it. Checkpoints are written at intervals while records arrive,
 * when the log file is rotated, and at shutdown, to `<log>.checkpoints.jsonl` beside the log.
 *
 * Verifying a log against its checkpoints finds:
 * - a rewritten chain: a checkpoint's hash differs from the log's hash at that sequence;
 * - a cut tail: the log ends before a sequence a checkpoint vouches for;
 * - a missing or forged checkpoint: the checkpoints' links or signatures do not hold.
 * Records after the last checkpoint are reported as not yet vouched for (a running service has some).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The development key: public on purpose, refused in production. */
export const DEV_AUDIT_SIGNING_KEY = 'local-development-audit-signing-key-do-not-use-in-production';

export class AuditSigningKeyError extends Error {
  override name = 'AuditSigningKeyError';
}

/** Env `AUDIT_SIGNING_KEY` (32 characters or more; required in production). */
export function auditSigningKeyFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const key = env.AUDIT_SIGNING_KEY || DEV_AUDIT_SIGNING_KEY;
  if (env.NODE_ENV === 'production' && key === DEV_AUDIT_SIGNING_KEY) throw new AuditSigningKeyError('AUDIT_SIGNING_KEY must be set in production (auditors hold it to verify the checkpoints).');
  if (key.length < 32) throw new AuditSigningKeyError('AUDIT_SIGNING_KEY must be at least 32 characters.');
  return key;
}

export interface Checkpoint {
  /** The sequence number and hash the log had reached. */
  readonly seq: number;
  readonly hash: string;
  readonly at: string;
  /** Why it was written: `interval`, `rotation` or `shutdown`. */
  readonly reason: 'interval' | 'rotation' | 'shutdown';
  /** The signature of the checkpoint before it (`GENESIS` for the first). */
  readonly previous: string;
  readonly signature: string;
}

export const FIRST_CHECKPOINT = 'GENESIS';

function signatureOf(key: string, checkpoint: Omit<Checkpoint, 'signature'>): string {
  const { seq, hash, at, reason, previous } = checkpoint;
  return createHmac('sha256', key).update(JSON.stringify({ seq, hash, at, reason, previous })).digest('hex');
}

export function signCheckpoint(key: string, checkpoint: Omit<Checkpoint, 'signature'>): Checkpoint {
  return { ...checkpoint, signature: signatureOf(key, checkpoint) };
}

export function checkpointLine(checkpoint: Checkpoint): string {
  return JSON.stringify(checkpoint);
}

export interface CheckpointReport {
  readonly ok: boolean;
  /** What is wrong, in order; empty when `ok`. */
  readonly problems: readonly string[];
  readonly checkpoints: number;
  /** Records after the last checkpoint (not vouched for yet). */
  readonly unvouched: number;
}

/**
 * Checks the checkpoints (signatures and links) and the log's lines against them. `lines` are the
 * log's records in order (across rotated files), as parsed objects with their `seq` and `hash`.
 */
export function verifyCheckpoints(options: {
  readonly key: string;
  readonly checkpointsText: string;
  readonly lines: readonly { readonly seq: number; readonly hash: string }[];
}): CheckpointReport {
  const problems: string[] = [];
  const bySeq = new Map(options.lines.map((line) => [line.seq, line.hash]));
  const lastSeq = options.lines.at(-1)?.seq ?? 0;
  const texts = options.checkpointsText.split('\n').filter((line) => line.trim() !== '');
  let previous = FIRST_CHECKPOINT;
  let vouchedUpTo = 0;
  texts.forEach((text, index) => {
    const where = `checkpoint ${index + 1}`;
    let checkpoint: Checkpoint;
    try {
      checkpoint = JSON.parse(text) as Checkpoint;
    } catch {
      problems.push(`${where} is not a JSON record`);
      return;
    }
    const expected = signatureOf(options.key, checkpoint);
    const given = typeof checkpoint.signature === 'string' && /^[0-9a-f]{64}$/.test(checkpoint.signature) ? checkpoint.signature : '0'.repeat(64);
    if (!timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(given, 'hex'))) {
      problems.push(`${where} (seq ${checkpoint.seq}) has a signature that does not verify with this key: it was forged or changed`);
      return;
    }
    if (checkpoint.previous !== previous) problems.push(`${where} (seq ${checkpoint.seq}) does not link to the checkpoint before it: a checkpoint is missing`);
    previous = checkpoint.signature;
    if (checkpoint.seq > lastSeq) {
      problems.push(`the log ends at seq ${lastSeq}, but ${where} vouches for seq ${checkpoint.seq}: ${checkpoint.seq - lastSeq} records were cut from its end`);
    } else if (checkpoint.seq > 0) {
      const hash = bySeq.get(checkpoint.seq);
      if (hash === undefined) problems.push(`${where} vouches for seq ${checkpoint.seq}, which none of the given files holds (give every rotated file, oldest first)`);
      else if (hash !== checkpoint.hash) problems.push(`the record at seq ${checkpoint.seq} is not the one ${where} vouches for: the chain was rewritten`);
    }
    vouchedUpTo = Math.max(vouchedUpTo, checkpoint.seq);
  });
  return { ok: problems.length === 0, problems, checkpoints: texts.length, unvouched: Math.max(0, lastSeq - vouchedUpTo) };
}
