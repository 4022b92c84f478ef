/**
 * The change feed of the embedded default (no `EVENTS_NATS_URL`): an append-only log per data
 * product in the data folder, `<dir>/<domain>.<product>/`, in segments of up to 1,000 events named
 * by their first position (`000000000001.log`), one event a line: its position, a tab, its JSON.
 * Publishers in any process of the machine take the product's lock (`proper-lockfile`), drop an
 * event the log holds already (a retry: the same id and signature), append and sync before answering; a line a crash left half
 * written is cut off by the next publish. Readers in any process follow the files by position,
 * polling for growth. Retention removes whole segments last written before it (never the last).
 */
import { mkdir, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';
import { deduplicationIdOf, verifyChangeEvent, type ChangeEvent } from './change-event.js';
import { ChangeFeedError, checkPosition, checkProduct, DEFAULT_RETENTION, type ChangeFeed, type FollowOptions, type Published, type Retention, type StoredChange } from './change-feed.js';

export interface FileFeedOptions {
  /** The folder of the logs (`<DATA_DIR>/events`). */
  readonly dir: string;
  /** The mesh's signing key: events are read only when signed with it (or `previousSigningKey`). */
  readonly signingKey: string;
  readonly previousSigningKey?: string | undefined;
  /** How often a follower looks for new events (default 100 ms). */
  readonly pollMs?: number;
  /** Events per segment (default 1,000): the unit retention removes. */
  readonly segmentEvents?: number;
}

const SEGMENT = /^(\d{12})\.log$/;
const segmentName = (first: number) => `${String(first).padStart(12, '0')}.log`;

/** What a product's log holds, as its publisher last read it. */
interface LogState {
  segments: number[];
  /** The last segment's size when read, and its lines' count. */
  tailSize: number;
  tailLines: number;
  last: number;
  ids: Map<string, number>;
}

/** The complete lines of a text (a last line without its newline is being written, or was cut by a crash). */
function completeLines(text: string): { lines: string[]; bytes: number } {
  const end = text.lastIndexOf('\n');
  if (end < 0) return { lines: [], bytes: 0 };
  return { lines: text.slice(0, end).split('\n'), bytes: Buffer.byteLength(text.slice(0, end + 1)) };
}

function parseLine(line: string): { position: number; text: string } | null {
  const tab = line.indexOf('\t');
  const position = Number(line.slice(0, tab));
  return tab > 0 && Number.isSafeInteger(position) && position > 0 ? { position, text: line.slice(tab + 1) } : null;
}

export function openFileFeed(options: FileFeedOptions): ChangeFeed {
  const keys = [options.signingKey, ...(options.previousSigningKey ? [options.previousSigningKey] : [])];
  const perSegment = options.segmentEvents ?? 1_000;
  const pollMs = options.pollMs ?? 100;
  const folder = (product: string) => join(options.dir, checkProduct(product));
  const segmentsOf = async (product: string): Promise<number[]> => {
    const names = await readdir(folder(product)).catch(() => [] as string[]);
    return names.flatMap((name) => SEGMENT.exec(name)?.slice(1, 2).map(Number) ?? []).sort((a, b) => a - b);
  };
  /** Each product's publishes, one at a time in this process (the lock orders them across processes). */
  const queues = new Map<string, Promise<unknown>>();
  /** A line's deduplication id: only a signed event has one (a line anyone else wrote never makes a real event a duplicate). */
  const idOf = (product: string, text: string): string | null => {
    const event = verifyChangeEvent(text, { keys, product });
    return event && deduplicationIdOf(event);
  };
  const states = new Map<string, LogState>();

  /** Reads the log as it is on disk (under the lock), cutting a half-written last line. */
  async function readState(product: string): Promise<LogState> {
    const segments = await segmentsOf(product);
    const known = states.get(product);
    const tail = segments.at(-1);
    if (tail === undefined) return { segments, tailSize: 0, tailLines: 0, last: 0, ids: new Map() };
    const file = join(folder(product), segmentName(tail));
    const size = (await stat(file)).size;
    if (known && known.segments.at(-1) === tail && known.segments.length === segments.length && known.tailSize === size) return known;
    // Another process wrote, or this is the first publish: read every segment kept (their ids are the duplicates to drop).
    const ids = new Map<string, number>();
    let last = tail - 1;
    let tailSize = 0;
    let tailLines = 0;
    for (const first of segments) {
      const path = join(folder(product), segmentName(first));
      const text = await readFile(path, 'utf8');
      const { lines, bytes } = completeLines(text);
      for (const line of lines) {
        const parsed = parseLine(line);
        if (!parsed) continue;
        const id = idOf(product, parsed.text);
        if (id !== null) ids.set(id, parsed.position);
        last = Math.max(last, parsed.position);
      }
      if (first === tail) {
        if (bytes < Buffer.byteLength(text)) await truncate(path, bytes); // a crash's half line
        tailSize = bytes;
        tailLines = lines.length;
      }
    }
    return { segments, tailSize, tailLines, last, ids };
  }

  async function retentionOf(product: string): Promise<Retention> {
    try {
      return JSON.parse(await readFile(join(folder(product), 'retention.json'), 'utf8')) as Retention;
    } catch {
      return DEFAULT_RETENTION;
    }
  }

  async function append(event: ChangeEvent): Promise<Published> {
    const product = event.subject;
    const dir = folder(product);
    await mkdir(dir, { recursive: true });
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(dir, { realpath: false, stale: 15_000, retries: { retries: 100, minTimeout: 10, maxTimeout: 200 } });
    } catch (error) {
      throw new ChangeFeedError('EVENTS_UNAVAILABLE', `The ${product} log is locked by another publisher: ${(error as Error).message}`);
    }
    try {
      const state = await readState(product);
      const seen = state.ids.get(deduplicationIdOf(event));
      if (seen !== undefined) {
        states.set(product, state);
        return { position: seen, duplicate: true };
      }
      const position = state.last + 1;
      if (state.segments.length === 0 || state.tailLines >= perSegment) {
        state.segments.push(position);
        state.tailSize = 0;
        state.tailLines = 0;
      }
      const line = `${position}\t${JSON.stringify(event)}\n`;
      const handle = await open(join(dir, segmentName(state.segments.at(-1)!)), 'a');
      try {
        await handle.write(line);
        await handle.datasync(); // durable before the publisher is told
      } finally {
        await handle.close();
      }
      state.tailSize += Buffer.byteLength(line);
      state.tailLines += 1;
      state.last = position;
      state.ids.set(deduplicationIdOf(event), position);
      // Retention: whole segments last written before it, never the one being written.
      const { maxAgeMs } = await retentionOf(product);
      for (const first of state.segments.slice(0, -1)) {
        const path = join(dir, segmentName(first));
        if ((await stat(path)).mtimeMs >= Date.now() - maxAgeMs) break;
        const { lines } = completeLines(await readFile(path, 'utf8'));
        for (const kept of lines) {
          const parsed = parseLine(kept);
          const id = parsed && idOf(product, parsed.text);
          if (id) state.ids.delete(id);
        }
        await rm(path, { force: true });
        state.segments.shift();
      }
      states.set(product, state);
      return { position, duplicate: false };
    } catch (error) {
      states.delete(product);
      throw error instanceof ChangeFeedError ? error : new ChangeFeedError('EVENTS_UNAVAILABLE', `The ${product} log could not be written: ${(error as Error).message}`);
    } finally {
      await release();
    }
  }

  const bounds = async (product: string) => {
    const segments = await segmentsOf(product);
    const tail = segments.at(-1);
    if (tail === undefined) return { first: 1, last: 0 };
    const { lines } = completeLines(await readFile(join(folder(product), segmentName(tail)), 'utf8'));
    const last = lines.reduce((found, line) => Math.max(found, parseLine(line)?.position ?? 0), tail - 1);
    return { first: segments[0]!, last };
  };

  return {
    kind: 'file',
    async declare(product: string, retention: Retention = DEFAULT_RETENTION) {
      await mkdir(folder(product), { recursive: true });
      await writeFile(join(folder(product), 'retention.json'), JSON.stringify(retention));
    },
    publish(event: ChangeEvent) {
      const queued = (queues.get(event.subject) ?? Promise.resolve()).then(() => append(event));
      queues.set(event.subject, queued.catch(() => undefined));
      return queued;
    },
    bounds,
    async *follow(product: string, { after, signal, onIgnored }: FollowOptions): AsyncGenerator<StoredChange> {
      checkPosition(product, after, await bounds(product));
      let position = after;
      let segment: number | undefined;
      let offset = 0;
      while (!signal.aborted) {
        const segments = await segmentsOf(product);
        if (segment === undefined || !segments.includes(segment)) {
          // The segment holding the next position (the last whose first is at most it).
          const holding = segments.filter((first) => first <= position + 1).at(-1);
          if (holding === undefined && segments.length > 0 && segments[0]! > position + 1) {
            throw new ChangeFeedError('EVENT_POSITION_EXPIRED', `The ${product} feed removed the events after position ${position} before they were read (it keeps ${segments[0]} on).`);
          }
          segment = holding;
          offset = 0;
        }
        let grew = false;
        if (segment !== undefined) {
          const path = join(folder(product), segmentName(segment));
          const size = await stat(path).then((found) => found.size, () => 0);
          if (size > offset) {
            const handle = await open(path, 'r');
            let text: string;
            try {
              const buffer = Buffer.alloc(size - offset);
              await handle.read(buffer, 0, buffer.length, offset);
              text = buffer.toString('utf8');
            } finally {
              await handle.close();
            }
            const { lines, bytes } = completeLines(text);
            offset += bytes;
            for (const line of lines) {
              const parsed = parseLine(line);
              if (!parsed || parsed.position <= position) continue;
              position = parsed.position;
              grew = true;
              const event = verifyChangeEvent(parsed.text, { keys, product });
              if (event) yield { position, event };
              else onIgnored?.(position);
              if (signal.aborted) return;
            }
          }
          // Read to its end, and a later segment started: go on there.
          const next = segments.find((first) => first > segment!);
          if (!grew && next !== undefined && size <= offset) {
            segment = next;
            offset = 0;
            continue;
          }
        }
        if (!grew) await sleep(pollMs, undefined, { signal }).catch(() => undefined);
      }
    },
    async lastEvent(product: string) {
      // From the last segment back, past any line that is not a signed event.
      for (const first of (await segmentsOf(product)).reverse()) {
        const { lines } = completeLines(await readFile(join(folder(product), segmentName(first)), 'utf8').catch(() => ''));
        for (const line of lines.reverse()) {
          const parsed = parseLine(line);
          const event = parsed && verifyChangeEvent(parsed.text, { keys, product });
          if (event) return { position: parsed.position, event };
        }
      }
      return null;
    },
    async close() {
      await Promise.all(queues.values());
    },
  };
}
