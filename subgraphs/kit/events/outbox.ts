/**
 * The change outbox: what a merge changed in each data product, written in the merge's own
 * transaction (so it is in the new version exactly when the change is), and published to the
 * change feed after the version is served (publisher.ts). Nothing is lost if the process dies
 * between the commit and the publish: the next start publishes what the feed does not hold yet.
 *
 * Before a merge changes a product's table, the rows it may change are copied aside (their
 * before-image: the keys its increments or range name, and those a derivation says it touches);
 * after it, each changed row is compared with its before-image field by field. A new row changed
 * every field; a row whose fields are all equal changed nothing and makes no event; a row gone is a
 * delete. The outbox holds keys and field names, never a value.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { MAX_KEYS_PER_EVENT, type ProductChange } from '../../../policy/events/change-event.js';
import type { Domain } from '../domain.js';
import { beforeTableOf, changedRowsOf, changedTableOf } from '../warehouse/staging-names.js';

export const OUTBOX_TABLE = '_change_outbox';

/** A before-image's own columns: the key it was taken for, and whether a row had it. */
const KEY = sql.raw('"__key"');
const PRESENT = sql.raw('"__present"');

/** The rows a merge replaced or removed in a table, as they were (none for a key that was new); with the before-image's own columns. */
export const rowsBefore = (table: string): RawBuilder<unknown> => sql`(select * from ${sql.table(beforeTableOf(table))} as b where b.${PRESENT})`;

/** A change as the outbox keeps it: its place in the domain's sequence, its product's change, and when it was made. */
export interface OutboxEntry {
  /** 1, 2, 3, … over every version of the domain's warehouse: the order of publishing. */
  readonly seq: number;
  readonly change: ProductChange;
  readonly at: string;
}

/** The id of an outbox entry's event: stable, so that publishing it again is a duplicate. */
export const eventIdOf = (entry: Pick<OutboxEntry, 'seq' | 'change'>): string => `${entry.change.product}@${entry.seq}`;

/** The outbox sequence number in an event id made by `eventIdOf` (null for another id). */
export function seqOfEventId(id: string): number | null {
  const seq = Number(id.slice(id.lastIndexOf('@') + 1));
  return id.includes('@') && Number.isSafeInteger(seq) && seq > 0 ? seq : null;
}

/** A product's table, key and fields; `others`: the table's columns no field shows (a row policy's region). */
type ProductOf = (table: string) => { id: string; key: string; fields: [field: string, column: string][]; others: string[] }[];

function productsOf(domain: Domain<any, any>): ProductOf {
  return (table) =>
    domain.dataProducts
      .filter(({ spec }) => spec.table === table)
      .map(({ spec }) => {
        const fields = Object.entries(spec.columns as Record<string, string>);
        const shown = new Set(fields.map(([, column]) => column));
        const columns = domain.tables.find(({ name }) => name === table)?.columns ?? [];
        return { id: `${domain.name}.${spec.name}`, key: spec.key, fields, others: columns.map(({ name }) => name).filter((name) => !shown.has(name)) };
      });
}

/** Creates the outbox in a new warehouse (a full load), empty. */
export async function createOutbox(db: Kysely<any>): Promise<void> {
  await sql`CREATE TABLE IF NOT EXISTS ${sql.table(OUTBOX_TABLE)} (seq BIGINT NOT NULL, product VARCHAR NOT NULL, change_json VARCHAR NOT NULL, made_at VARCHAR NOT NULL)`.execute(db);
}

/**
 * Copies aside the rows of `table` whose key `keys` (a query of key values) selects, before they
 * change, and the keys that have no row yet (a row made later is new, whoever makes it): once per
 * key (a key already copied keeps its first image).
 */
export async function captureBefore(db: Kysely<any>, domain: Domain<any, any>, table: string, keys: RawBuilder<unknown>): Promise<void> {
  // A product's table, for its events; any other table, for the domain's derivation
  // (`DeriveIncrementOptions.before`: the rows a merge replaced or removed), keyed by its primary key.
  const [product] = productsOf(domain)(table);
  const columns = product ? [product.key] : (domain.tables.find(({ name }) => name === table)?.primaryKey ?? []);
  if (columns.length === 0) return;
  const before = beforeTableOf(table);
  // One key column is the key itself (the events compare rows by it); several, their values joined.
  const keyOf = (alias: string) => (columns.length === 1 ? sql`${sql.ref(`${alias}.${columns[0]}`)}` : sql`concat_ws('|', ${sql.join(columns.map((column) => sql`cast(${sql.ref(`${alias}.${column}`)} as varchar)`))})`);
  const matches = sql.join(columns.map((column) => sql`t.${sql.ref(column)} = k.${sql.ref(column)}`), sql` and `);
  const listed = sql.join(columns.map((column) => sql`q.${sql.ref(column)}`));
  await sql`CREATE TABLE IF NOT EXISTS ${sql.table(before)} AS SELECT t.*, ${keyOf('t')} AS ${KEY}, true AS ${PRESENT} FROM ${sql.table(table)} AS t WHERE false`.execute(db);
  await sql`INSERT INTO ${sql.table(before)} SELECT t.*, ${keyOf('k')}, t.${sql.ref(columns[0]!)} IS NOT NULL
    FROM (SELECT DISTINCT ${listed} FROM (${keys}) AS q) AS k LEFT JOIN ${sql.table(table)} AS t ON ${matches}
    WHERE NOT EXISTS (SELECT 1 FROM ${sql.table(before)} AS b WHERE b.${KEY} = ${keyOf('k')})`.execute(db);
}

/**
 * A derivation's rows: the rows of `table` whose key `keys` selects may change now (their derived
 * columns): their before-image is taken, and they join the merge's changed rows (checks, profiles,
 * events). Call it before the change.
 */
export async function touchRows(db: Kysely<any>, domain: Domain<any, any>, table: string, keys: RawBuilder<unknown>): Promise<void> {
  const spec = domain.tables.find(({ name }) => name === table);
  if (!spec) throw new Error(`The ${domain.name} domain has no table "${table}" to touch.`);
  if (spec.primaryKey.length !== 1) throw new Error(`${table}: only a table keyed by one column can be touched by a derivation.`);
  const key = sql.ref(spec.primaryKey[0]!);
  const changed = changedTableOf(table);
  await captureBefore(db, domain, table, keys);
  await sql`CREATE TABLE IF NOT EXISTS ${sql.table(changed)} AS SELECT ${key} FROM ${sql.table(table)} WHERE false`.execute(db);
  // NOT EXISTS, not NOT IN: PostgreSQL runs a NOT IN over a table it has no statistics of row by row.
  await sql`INSERT INTO ${sql.table(changed)} SELECT DISTINCT k.${key} FROM (${keys}) AS k WHERE NOT EXISTS (SELECT 1 FROM ${sql.table(changed)} AS c WHERE c.${key} = k.${key})`.execute(db);
  await sql`DROP VIEW IF EXISTS ${sql.table(changedRowsOf(table))}`.execute(db);
  await sql`CREATE VIEW ${sql.table(changedRowsOf(table))} AS SELECT * FROM ${sql.table(table)} AS t WHERE t.${key} IN (SELECT c.${key} FROM ${sql.table(changed)} AS c)`.execute(db);
}

/**
 * The fields of a product whose column differs between a row and its before-image, as a bit mask,
 * and one bit more when a column no field shows differs (the row changed, and may have moved into
 * or out of a row policy's reach); -1: no before-image, a new row.
 */
function changeMask(fields: readonly [string, string][], others: readonly string[]): RawBuilder<number> {
  const differs = (column: string) => sql`b.${sql.ref(column)} is distinct from t.${sql.ref(column)}`;
  const bits = fields.map(([, column], i) => sql`(case when ${differs(column)} then ${sql.lit(2 ** i)} else 0 end)`);
  if (others.length > 0) bits.push(sql`(case when ${sql.join(others.map(differs), sql` or `)} then ${sql.lit(2 ** fields.length)} else 0 end)`);
  return sql<number>`case when b.${PRESENT} is not true then -1 else ${sql.join(bits, sql` + `)} end`;
}

/** What a table's rows were: a before-image (its rows with their key and presence columns), and the keys that may have changed (null: every key). */
export interface TableBefore {
  readonly table: string;
  readonly before: RawBuilder<unknown>;
  readonly changed: RawBuilder<unknown> | null;
}

/** The before-images a merge took of the tables it changed. */
export const mergedTables = (tables: readonly string[], domain: Domain<any, any>): TableBefore[] =>
  tables.flatMap((table) => {
    const key = domain.tables.find(({ name }) => name === table)?.primaryKey[0];
    return key ? [{ table, before: sql`${sql.table(beforeTableOf(table))}`, changed: sql`select c.${sql.ref(key)} from ${sql.table(changedTableOf(table))} as c` }] : [];
  });

/** Every row of a table in another version (a full load's serving one), as a before-image. */
export const wholeTableBefore = (table: string, key: string, source: RawBuilder<unknown>): TableBefore => ({
  table,
  before: sql`(select s.*, s.${sql.ref(key)} as ${KEY}, true as ${PRESENT} from ${source} as s)`,
  changed: null,
});

/**
 * Writes what changed in each product into the outbox, its entries numbered after the last one
 * kept: each row still there that differs from its before-image (or had none), grouped by the
 * fields that differ; each row of the before-image that is gone. Drops the merge's before-images.
 */
export async function writeOutbox(db: Kysely<any>, domain: Domain<any, any>, tables: readonly TableBefore[], options: { version: string; now: Date }): Promise<OutboxEntry[]> {
  await createOutbox(db);
  const last = await sql<{ seq: number | string | null }>`select max(seq) as seq from ${sql.table(OUTBOX_TABLE)}`.execute(db);
  let seq = Number(last.rows[0]?.seq ?? 0);
  const entries: OutboxEntry[] = [];
  const add = (change: Omit<ProductChange, 'version'>) => {
    for (let i = 0; i < change.keys.length; i += MAX_KEYS_PER_EVENT) {
      seq += 1;
      entries.push({ seq, at: options.now.toISOString(), change: { ...change, keys: change.keys.slice(i, i + MAX_KEYS_PER_EVENT), version: options.version } });
    }
  };
  for (const { table, before, changed } of tables) {
    for (const product of productsOf(domain)(table)) {
      const key = sql.ref(product.key);
      // The rows there now that may have changed, each with the fields that differ from its before-image.
      // A row equal to its before-image changed nothing (mask 0): left in the database.
      const upserts = await sql<{ k: string; mask: number | string }>`
        select k, mask from (
          select cast(t.${key} as varchar) as k, ${changeMask(product.fields, product.others)} as mask
          from ${sql.table(table)} as t
          left join ${before} as b on b.${KEY} = t.${key}
          ${changed ? sql`where t.${key} in (${changed})` : sql``}
        ) as compared where mask <> 0
        order by k`.execute(db);
      const byMask = new Map<number, string[]>();
      for (const row of upserts.rows) {
        const mask = Number(row.mask);
        const keys = byMask.get(mask) ?? [];
        keys.push(String(row.k));
        byMask.set(mask, keys);
      }
      for (const [mask, keys] of [...byMask].sort(([a], [b]) => a - b)) {
        add({ product: product.id, operation: 'upsert', keys, changedFields: product.fields.filter((_, i) => mask === -1 || (mask & (2 ** i)) !== 0).map(([field]) => field) });
      }
      // The rows that were there and are gone.
      const deletes = await sql<{ k: string }>`
        select cast(b.${KEY} as varchar) as k from ${before} as b
        where b.${PRESENT} and not exists (select 1 from ${sql.table(table)} as t where t.${key} = b.${KEY})
        order by 1`.execute(db);
      if (deletes.rows.length > 0) add({ product: product.id, operation: 'delete', keys: deletes.rows.map((row) => String(row.k)), changedFields: [] });
    }
    await sql`DROP TABLE IF EXISTS ${sql.table(beforeTableOf(table))}`.execute(db);
  }
  await insertEntries(db, entries);
  return entries;
}

async function insertEntries(db: Kysely<any>, entries: readonly OutboxEntry[]): Promise<void> {
  for (let i = 0; i < entries.length; i += 200) {
    const rows = entries.slice(i, i + 200).map((entry) => sql`(${entry.seq}, ${entry.change.product}, ${JSON.stringify(entry.change)}, ${entry.at})`);
    await sql`INSERT INTO ${sql.table(OUTBOX_TABLE)} (seq, product, change_json, made_at) VALUES ${sql.join(rows)}`.execute(db);
  }
}

/**
 * A full load's outbox: the serving version's entries the feed may not hold yet (after `through`),
 * and its last whatever (the next entries are numbered after it).
 */
export async function carryOutbox(db: Kysely<any>, serving: readonly OutboxEntry[], through: number): Promise<void> {
  await createOutbox(db);
  await insertEntries(db, serving.filter((entry, i) => entry.seq > through || i === serving.length - 1));
}

/** Drops the outbox's entries up to `seq` (the feed holds them), but its last. */
export async function pruneOutbox(db: Kysely<any>, seq: number): Promise<void> {
  // The last entry stays whatever: the next entries are numbered after it.
  if (seq > 0) await sql`DELETE FROM ${sql.table(OUTBOX_TABLE)} WHERE seq <= ${seq} AND seq < (select max(seq) from ${sql.table(OUTBOX_TABLE)})`.execute(db);
}

/** The outbox's entries after `seq`, in order (none in a warehouse without an outbox). */
export async function readOutbox(db: Kysely<any>, after = 0): Promise<OutboxEntry[]> {
  try {
    const rows = await sql<{ seq: number | string; change_json: string; made_at: string }>`select seq, change_json, made_at from ${sql.table(OUTBOX_TABLE)} where seq > ${after} order by seq`.execute(db);
    return rows.rows.map((row) => ({ seq: Number(row.seq), change: JSON.parse(row.change_json) as ProductChange, at: row.made_at }));
  } catch {
    return [];
  }
}
