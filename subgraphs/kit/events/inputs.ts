/**
 * Inputs: a data product fed by another domain's data product. The consuming domain follows the
 * other product's change feed (events carry keys, never values), reads each changed key's values
 * through the gateway under its own principal (so the producer's policy applies to it as to any
 * reader), and writes them as an increment of the table it keeps them in (declared `source:
 * 'increments'`); then it asks its pipeline to merge it, by the kit's increment machinery: quality
 * checks, profiles, the derived columns (the domain's `deriveIncrement`), its own change events,
 * lineage. A key the gateway no longer returns (deleted, or out of the principal's reach) is a
 * tombstone. The first time (and when the feed no longer holds where it is: its retention passed,
 * or it started anew), it reads every entity of the input page by page: a snapshot, then the events
 * after the position the feed held when it began.
 *
 * Where it is: in the increments it wrote. Each increment's folder name ends with the input and the
 * feed position it holds the values up to (`…-from-finance.orders-p42`), so a process that dies
 * after writing one resumes after it, and one that dies before reads those events again: the values
 * it then reads are the same or newer, and a merge by key of the same values changes nothing.
 */
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import { ChangeFeedError, type ChangeFeed } from '../../../policy/events/change-feed.js';
import { mintDevToken } from '../../../policy/identity-config.js';
import type { Domain } from '../domain.js';
import type { ProductInput } from './input-declaration.js';
import type { TableSpec } from '../warehouse/tables.js';
import { compareIncrementNames, DELETED_COLUMN, incrementName, INCREMENTS_FOLDER } from '../warehouse/increments.js';

export type { ProductInput } from './input-declaration.js';

/** A product's inputs, with the product they feed: every input of every product of the domain. */
export const inputsOf = (domain: Domain<any, any>): { readonly feeds: string; readonly input: ProductInput }[] =>
  domain.dataProducts.flatMap(({ spec }) => (spec.inputs ?? []).map((input: ProductInput) => ({ feeds: `${domain.name}.${spec.name}`, input })));

/** The table an input's values are kept in, and its key column (an input names a table of its domain keyed by one column). */
export function keptTableOf(domain: Domain<any, any>, input: ProductInput): { readonly table: TableSpec; readonly key: string } {
  const table = domain.tables.find(({ name }) => name === input.table);
  if (!table || table.primaryKey.length !== 1) throw new Error(`${domain.name}: input ${input.product} names table "${input.table}", which is not a table of the domain keyed by one column.`);
  return { table, key: table.primaryKey[0]! };
}

/** The keys a version of the domain's warehouse keeps of an input (a new snapshot removes those it does not read again). */
export async function keptKeys(db: Kysely<any>, domain: Domain<any, any>, input: ProductInput): Promise<string[]> {
  const { table, key } = keptTableOf(domain, input);
  return (await sql<{ k: unknown }>`select ${sql.ref(key)} as k from ${sql.table(table.name)}`.execute(db)).rows.map(({ k }) => String(k));
}

/** Events an input's feed holds past what has been read of it (null: not known yet). */
export const behindOf = (input: Pick<InputStatus, 'position' | 'last'>): number | null => (input.position === null || input.last === null ? null : Math.max(0, input.last - input.position));

/** Reads an input's entities through the gateway. */
export interface InputReader {
  /** Every entity, page by page. */
  all(input: ProductInput, signal?: AbortSignal): AsyncIterable<readonly unknown[]>;
  /** The entities of these keys that the reader may see now (at most 100 keys). */
  byKeys(input: ProductInput, keys: readonly string[], signal?: AbortSignal): Promise<readonly unknown[]>;
}

/** A read the gateway refused or failed: its codes, as the gateway gave them. */
export class InputReadError extends Error {
  override name = 'InputReadError';
  constructor(
    message: string,
    readonly codes: readonly string[],
    /** The gateway's Retry-After, when it said one. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** Failures that pass: the read is tried again where it was (a snapshot's page too), not from the start. */
const TRANSIENT = new Set(['RATE_LIMITED', 'GATEWAY_NOT_READY', 'GATEWAY_OVERLOADED', 'SUBGRAPH_UNAVAILABLE', 'SUBGRAPH_TIMEOUT', 'INPUT_UNREACHABLE']);

/**
 * Whether an input is settled: merged since the process started, or failing for a reason that does
 * not pass by itself (refused, or a product the mesh does not serve: its codes say which), rather
 * than still on its way (the gateway starting, a page rate limited).
 */
export const inputSettled = (input: InputStatus): boolean => input.merged || (input.error !== null && !input.error.codes.every((code) => TRANSIENT.has(code)));
/** The waits before each new try of a read that failed for a passing reason (about two minutes in all). */
const RETRY_WAITS_MS = [500, 1_000, 2_000, 4_000, 8_000, 15_000, 30_000, 60_000];

/** Keys a read by key asks for at most (a list filter's bound). */
export const KEYS_PER_READ = 100;
const PAGE = 500;

/**
 * Reads through the gateway's GraphQL endpoint with the domain's token (`token()` is asked at each
 * read: a token about to expire is replaced). Any error in an answer fails the read: a value the
 * policy withheld is never written as if it were null.
 */
export function gatewayInputReader(options: { readonly url: string; readonly token: () => Promise<string> | string; readonly timeoutMs?: number }): InputReader {
  type Page = { nodes: unknown[]; pageInfo?: { hasNextPage: boolean; endCursor: string | null } };
  const post = async (input: ProductInput, query: string, variables: Record<string, unknown>, signal?: AbortSignal): Promise<Page> => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await postOnce(input, query, variables, signal);
      } catch (error) {
        const wait = RETRY_WAITS_MS[attempt];
        if (signal?.aborted || !(error instanceof InputReadError) || !error.codes.some((code) => TRANSIENT.has(code)) || wait === undefined) throw error;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(wait, Math.min(error.retryAfterMs ?? 0, 60_000)));
          signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
        });
      }
    }
  };
  const postOnce = async (input: ProductInput, query: string, variables: Record<string, unknown>, signal?: AbortSignal): Promise<Page> => {
    const response = await fetch(options.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await options.token()}` },
      body: JSON.stringify({ query, variables }),
      signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs ?? 30_000)]) : AbortSignal.timeout(options.timeoutMs ?? 30_000),
    }).catch((error: unknown) => {
      throw new InputReadError(`The gateway at ${options.url} did not answer: ${(error as Error).message}`, ['INPUT_UNREACHABLE']);
    });
    const body = (await response.json().catch(() => null)) as { data?: { page?: { nodes: unknown[] } | null }; errors?: { message: string; extensions?: { code?: string } }[] } | null;
    if (body?.errors?.length || !body?.data?.page) {
      const codes = [...new Set((body?.errors ?? []).map((error) => error.extensions?.code ?? 'UNKNOWN'))];
      const retryAfter = Number(response.headers.get('retry-after'));
      throw new InputReadError(
        `Reading ${input.product} through the gateway failed (HTTP ${response.status}): ${(body?.errors ?? []).map((error) => error.message).join('; ') || 'no data'}`,
        // Without a GraphQL code, one of the catalogue's by the status (the message keeps the status).
        codes.length > 0 ? codes : [response.status === 429 ? 'RATE_LIMITED' : response.status >= 502 && response.status <= 504 ? 'INPUT_UNREACHABLE' : 'INPUT_FAILED'],
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
      );
    }
    return body.data.page as { nodes: unknown[] };
  };
  return {
    async *all(input, signal) {
      const query = `query MeshInputSnapshot($after: String) { page: ${input.field}(first: ${PAGE}, after: $after) { nodes { ${input.selection} } pageInfo { hasNextPage endCursor } } }`;
      let after: string | null = null;
      for (;;) {
        const page = await post(input, query, { after }, signal);
        yield page.nodes;
        if (!page.pageInfo?.hasNextPage || !page.pageInfo.endCursor) return;
        after = page.pageInfo.endCursor;
      }
    },
    async byKeys(input, keys, signal) {
      const query = `query MeshInputChanges($keys: [ID!]) { page: ${input.field}(first: ${KEYS_PER_READ}, filter: { ${input.keyFilter}: $keys }) { nodes { ${input.selection} } } }`;
      return (await post(input, query, { keys }, signal)).nodes;
    },
  };
}

const POSITION = /-from-(.+)-p(\d+)$/;

/**
 * The feed position an input's last increment holds values up to (null: none written yet: a
 * snapshot comes first). The last written, not the highest: after a feed that started again (its
 * positions from 1), the snapshot read then is where the input is.
 */
export async function inputPositionIn(rawDir: string, product: string): Promise<number | null> {
  const names = (await readdir(join(rawDir, INCREMENTS_FOLDER)).catch(() => [] as string[])).filter((name) => !name.startsWith('.') && !name.startsWith('_')).sort(compareIncrementNames);
  for (const name of names.reverse()) {
    const match = POSITION.exec(name);
    if (match && match[1] === product) return Number(match[2]);
  }
  return null;
}

/**
 * Writes rows (and tombstones for `gone` keys) of a table as one increment named for the input and
 * the position it holds, after every increment there and after the serving version's watermark:
 * written aside, then renamed into place (a merge never reads half of it).
 */
export async function writeInputIncrement(options: {
  readonly rawDir: string;
  readonly domain: Domain<any, any>;
  readonly input: ProductInput;
  readonly position: number;
  /** The rows, or their pages as they are read (written as they come: a snapshot is never held whole). */
  readonly rows: readonly Readonly<Record<string, unknown>>[] | AsyncIterable<readonly Readonly<Record<string, unknown>>[]>;
  /** The keys that are gone, asked once every row is written. */
  readonly gone: () => Iterable<string>;
  readonly now?: Date;
}): Promise<string> {
  const { domain, input } = options;
  const { table, key } = keptTableOf(domain, input);
  const columns = table.columns.filter((column) => !column.derived).map((column) => column.name);
  const folder = join(options.rawDir, INCREMENTS_FOLDER);
  await mkdir(folder, { recursive: true });
  const file = table.file ?? `${table.name}.csv`;
  const partial = join(folder, `.${input.product}-p${options.position}`);
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial);
  const out = await open(join(partial, file), 'w');
  try {
    await out.write(stringify([[...columns, DELETED_COLUMN]]));
    const write = (rows: readonly Readonly<Record<string, unknown>>[]) => (rows.length > 0 ? out.write(stringify(rows.map((row) => [...columns.map((column) => row[column] ?? null), 'false']))) : null);
    if (Symbol.asyncIterator in options.rows) for await (const page of options.rows) await write(page);
    else await write(options.rows);
    const tombstones = [...options.gone()].map((gone) => [...columns.map((column) => (column === key ? gone : null)), 'true']);
    if (tombstones.length > 0) await out.write(stringify(tombstones));
    await out.sync();
  } finally {
    await out.close();
  }
  const latest = (await readdir(folder)).filter((name) => !name.startsWith('.') && !name.startsWith('_')).sort(compareIncrementNames).at(-1);
  const name = nameAfter(latest, options.now ?? new Date(), `-from-${input.product}-p${options.position}`);
  await rename(partial, join(folder, name));
  return name;
}

/**
 * An input increment's name, after every delivery there (another source's included, and a position
 * lower than the last one's after a feed started anew), so that none is passed over as late: its
 * time, else the latest's time with the next sequence number.
 */
function nameAfter(latest: string | undefined, now: Date, tail: string): string {
  const timed = incrementName(now, 0);
  if (latest === undefined || compareIncrementNames(`${timed}${tail}`, latest) > 0) return `${timed}${tail}`;
  const parsed = /^(\d{8}T\d{6}Z)-(\d{6})/.exec(latest);
  let base = parsed ? `${parsed[1]}-${String(Number(parsed[2]) + 1).padStart(6, '0')}` : latest.replace(POSITION, '');
  for (let tries = 0; tries < 10 && compareIncrementNames(`${base}${tail}`, latest) <= 0; tries += 1) base += '.1';
  return `${base}${tail}`;
}

export interface InputStatus {
  /** The product fed, and the input. */
  readonly feeds: string;
  readonly product: string;
  /** The position its kept values are read up to (null: not read yet). */
  readonly position: number | null;
  /** The last position the input's feed holds, as last seen. */
  readonly last: number | null;
  /** When the last event read was made by its producer (ISO 8601), or when the snapshot was read. */
  readonly readAt: string | null;
  /** Whether what was read has been merged at least once since the process started (the product holds the input). */
  readonly merged: boolean;
  /** The last failure (code and message), cleared by the next success. */
  readonly error: { readonly codes: readonly string[]; readonly message: string } | null;
}

export interface InputFollower {
  status(): InputStatus[];
  /** Resolves once every input has been read up to the position its feed held when asked, and merged. */
  caughtUp(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface FollowInputsOptions {
  readonly domain: Domain<any, any>;
  readonly rawDir: string;
  readonly openFeed: () => Promise<ChangeFeed>;
  readonly reader: InputReader;
  /** Merges what was written (a pipeline run of the product fed); resolves when it is served. */
  readonly load: (feeds: string) => Promise<void>;
  /** The keys the serving version keeps of an input (`keptKeys` on it; a new snapshot removes the others). */
  readonly servingKeys: (input: ProductInput) => Promise<readonly string[]>;
  readonly log: Logger;
  /** The first wait after a failure (default 1 s, doubled up to 30 s). */
  readonly retryMs?: number;
  /** How often the feeds' last positions are read, for how far behind each input is (default 15 s). */
  readonly watchMs?: number;
}

/** Follows every input of the domain's products until stopped; failures are logged and tried again. */
export function followInputs(options: FollowInputsOptions): InputFollower {
  const { domain, log } = options;
  const controller = new AbortController();
  const statuses = new Map<string, InputStatus>();
  let feed: Promise<ChangeFeed> | null = null;
  const feedOf = () => (feed ??= options.openFeed().catch((error: unknown) => {
    feed = null;
    throw error;
  }));
  const sleep = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    controller.signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
  const set = (product: string, change: Partial<InputStatus>) => statuses.set(product, { ...statuses.get(product)!, ...change });
  /** The merged position: written positions merge one load at a time; a load asked while one runs follows it. */
  let loading: Promise<void> = Promise.resolve();
  let merged = new Map<string, number>();
  const merge = (feeds: string, product: string, position: number): Promise<void> => {
    loading = loading.catch(() => undefined).then(async () => {
      if ((merged.get(product) ?? -1) >= position) return; // a load asked later covered it
      const written = await inputPositionIn(options.rawDir, product);
      await options.load(feeds);
      merged = new Map(merged).set(product, written ?? position);
      set(product, { merged: true });
    });
    return loading;
  };

  const readKeys = async (input: ProductInput, keys: readonly string[]) => {
    const { key } = keptTableOf(domain, input);
    const rows: Record<string, unknown>[] = [];
    for (let i = 0; i < keys.length; i += KEYS_PER_READ) {
      const chunk = keys.slice(i, i + KEYS_PER_READ);
      for (const node of await options.reader.byKeys(input, chunk, controller.signal)) rows.push({ ...input.toRow(node) });
    }
    const found = new Set(rows.map((row) => String(row[key])));
    return { rows, gone: [...new Set(keys)].filter((candidate) => !found.has(candidate)) };
  };

  const follow = async (feeds: string, input: ProductInput) => {
    let wait = options.retryMs ?? 1_000;
    let snapshot = false;
    let lastSaid = '';
    while (!controller.signal.aborted) {
      try {
        const changes = await feedOf();
        let position = snapshot ? null : await inputPositionIn(options.rawDir, input.product);
        if (position === null) {
          // A snapshot: every entity as it is now, then the events after the feed's position when it began.
          const { last } = await changes.bounds(input.product);
          const { key } = keptTableOf(domain, input);
          // The keys kept now: those the snapshot does not read again are gone (none the first time).
          const gone = new Set(await options.servingKeys(input));
          let read = 0;
          const signal = controller.signal;
          const pages = (async function* () {
            for await (const page of options.reader.all(input, signal)) {
              if (signal.aborted) throw new Error('stopped');
              const rows = page.map((node) => input.toRow(node));
              for (const row of rows) gone.delete(String(row[key]));
              read += rows.length;
              yield rows;
            }
          })();
          await writeInputIncrement({ rawDir: options.rawDir, domain, input, position: last, rows: pages, gone: () => gone });
          snapshot = false;
          log.info({ input: input.product, feeds, rows: read, removed: gone.size, position: last }, `input ${input.product} read whole (a snapshot)`);
          set(input.product, { position: last, last, readAt: new Date().toISOString(), error: null });
          position = last;
        }
        // What was written and not merged yet (by this process or one before it) is merged first.
        await merge(feeds, input.product, position);
        set(input.product, { position, last: Math.max(position, (await changes.bounds(input.product)).last), error: null });
        wait = options.retryMs ?? 1_000;
        if (lastSaid) log.info({ input: input.product, feeds, position }, `input ${input.product} read again`);
        lastSaid = '';
        for await (const { position: at, event } of changes.follow(input.product, { after: position, signal: controller.signal })) {
          const { rows, gone } = await readKeys(input, event.data.keys);
          await writeInputIncrement({ rawDir: options.rawDir, domain, input, position: at, rows, gone: () => gone });
          set(input.product, { position: at, last: Math.max(at, statuses.get(input.product)?.last ?? 0), readAt: event.time ?? new Date().toISOString(), error: null });
          void merge(feeds, input.product, at).catch((error: unknown) => {
            // Read and written, not merged: the next event's run (or the product's next scheduled run) merges it; its freshness says so meanwhile.
            set(input.product, { error: { codes: ['INPUT_FAILED'], message: (error as Error).message } });
            log.error({ input: input.product, feeds, error: (error as Error).message }, `the ${feeds} load of input ${input.product} failed; the next event or the next run merges it`);
          });
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        const codes = error instanceof InputReadError ? error.codes : error instanceof ChangeFeedError ? [error.code] : ['INPUT_FAILED'];
        set(input.product, { error: { codes, message: (error as Error).message } });
        if (error instanceof ChangeFeedError && (error.code === 'EVENT_POSITION_EXPIRED' || error.code === 'EVENT_POSITION_INVALID')) {
          // What it missed is gone from the feed (its retention), or the feed started again (a new stream): read the whole input again.
          log.warn({ input: input.product, feeds, code: error.code }, `input ${input.product}: the feed no longer holds the events after our position; reading it whole again`);
          snapshot = true;
          continue;
        }
        // Said once per kind of failure (a gateway still starting fails every second), then quietly until it changes.
        const said = codes.join(',');
        if (said !== lastSaid) log.warn({ input: input.product, feeds, codes, error: (error as Error).message }, `input ${input.product} could not be read; trying again until it can`);
        lastSaid = said;
        await sleep(wait);
        // A gateway not up yet (the mesh is starting) is asked again soon; other failures less and less often.
        wait = codes.includes('INPUT_UNREACHABLE') ? Math.min(wait, 2_000) : Math.min(wait * 2, 30_000);
      }
    }
  };

  // How far each feed is, seen now and then even when no event comes to this process (a reader stuck shows as behind).
  const watch = setInterval(() => {
    void feedOf()
      .then(async (changes) => {
        for (const { input } of inputsOf(domain)) {
          const { last } = await changes.bounds(input.product);
          set(input.product, { last }); // as the feed says now (a feed started anew holds fewer)
        }
      })
      .catch(() => undefined); // the follow loop says why the feed fails
  }, options.watchMs ?? 15_000);
  watch.unref();
  const running = inputsOf(domain).map(({ feeds, input }) => {
    keptTableOf(domain, input); // an input naming no table of the domain keyed by one column stops the start
    statuses.set(input.product, { feeds, product: input.product, position: null, last: null, readAt: null, merged: false, error: null });
    return follow(feeds, input);
  });

  return {
    status: () => [...statuses.values()],
    async caughtUp(timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      const changes = await feedOf();
      const targets = await Promise.all(inputsOf(domain).map(async ({ input }) => ({ product: input.product, last: (await changes.bounds(input.product)).last })));
      while (targets.some(({ product, last }) => (merged.get(product) ?? -1) < last || !merged.has(product))) {
        if (Date.now() > deadline) throw new Error(`The inputs of ${domain.name} were not read and merged within ${timeoutMs} ms: ${JSON.stringify([...statuses.values()])}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await loading;
    },
    async stop() {
      clearInterval(watch);
      controller.abort();
      await Promise.allSettled(running);
      await loading.catch(() => undefined);
      if (feed) await (await feed.catch(() => null))?.close();
    },
  };
}


/**
 * Where and as whom a domain reads its inputs: the gateway's GraphQL URL (`GATEWAY_URL`, default
 * http://127.0.0.1:4000/graphql) and the domain's own token: in production from the file
 * `MESH_TOKEN_FILE` names (your identity provider's token for the domain, rotated by your secret
 * manager; read at each read), required there; in development, a token of the local issuer for
 * `<domain>-inputs` (role steward, an hour), made at each read.
 */
export function inputAccessFromEnv(domain: string, env: NodeJS.ProcessEnv = process.env): { readonly url: string; readonly token: () => Promise<string> } {
  const url = env.GATEWAY_URL || 'http://127.0.0.1:4000/graphql';
  if (!/^https?:\/\//.test(url)) throw new Error(`GATEWAY_URL must be an http(s) URL, got "${url.slice(0, 80)}".`);
  const file = env.MESH_TOKEN_FILE;
  if (file) {
    return {
      url,
      async token() {
        const token = (await readFile(file, 'utf8')).trim();
        if (!token) throw new InputReadError(`MESH_TOKEN_FILE (${file}) is empty.`, ['UNAUTHENTICATED']);
        return token;
      },
    };
  }
  if (env.NODE_ENV === 'production') throw new Error(`The ${domain} domain reads other domains' products (its inputs): give it MESH_TOKEN_FILE, a file holding its token from your identity provider (development tokens are refused in production).`);
  return { url, token: async () => mintDevToken({ subject: `${domain}-inputs`, roles: ['steward'], regions: [], client: `${domain}-inputs`, expiresInSeconds: 3600 }) };
}
