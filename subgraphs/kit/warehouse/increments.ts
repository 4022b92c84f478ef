/**
 * Incremental loads. Beside its full files, a domain's raw folder may hold increments:
 * `<rawDir>/increments/<name>/<table file>`, one folder per delivery, applied in the order of their
 * names (numbers within a name compare as numbers: `9` before `10`). Each file holds the rows of its
 * table added or changed since the previous delivery, with the table's raw columns (in any order)
 * and optionally `_deleted`: `true` marks a row deleted at the source (a tombstone: its key is
 * enough). A folder whose name starts with `.` or `_` is ignored (a producer writes there and
 * renames the folder into place when it is complete).
 *
 * Merging stages each table's increments in `_increment_<table>` (every delivery, numbered), then,
 * delivery by delivery, deletes the rows whose key it holds and inserts its rows that are not
 * tombstones: the merge by key. `_changed_<table>` then holds the keys it touched (inserted,
 * updated or deleted), for the domain's derived columns and the quality checks of the changed rows,
 * and the view `_changed_rows_<table>` those rows.
 * The serving version records each delivery it applied (`_increments`): the last is its watermark.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { writtenColumns, type TableSpec } from './tables.js';
import type { Warehouse } from './warehouse.js';
import { beforeTableOf, changedRowsOf, changedTableOf, stagedTableOf } from './staging-names.js';

export const INCREMENTS_FOLDER = 'increments';
export const DELETED_COLUMN = '_deleted';
export const INCREMENTS_TABLE = '_increments';
const ORDINAL_COLUMN = '_increment';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const order = new Intl.Collator('en', { numeric: true });

/** An increment's name for a delivery at a time: `20261207T014206Z-000001` (sorts by time, then by sequence). */
export const incrementName = (at: Date, sequence: number): string => `${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${String(sequence).padStart(6, '0')}`;

/** The order increments apply in (and the watermark is compared in). */
export const compareIncrementNames = (a: string, b: string): number => order.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);

export { changedRowsOf, changedTableOf, stagedTableOf } from './staging-names.js';

export interface Increment {
  readonly name: string;
  /** Table name → its file in the increment. */
  readonly files: ReadonlyMap<string, string>;
  /** When it was delivered: the newest of its files' modification times (ISO 8601). */
  readonly deliveredAt: string;
}

export interface TableChanges {
  inserted: number;
  updated: number;
  deleted: number;
}

/** An increment the load cannot read as its tables' changes: the load fails, naming it; nothing is merged. */
export class IncrementError extends Error {
  override name = 'IncrementError';
}

/**
 * The increments of a raw folder past a watermark (all of them for `null`), in the order they apply.
 * Given the deliveries the serving version applied, one named before the watermark that it did not
 * apply (delivered late, or under a clock behind) fails the load rather than being passed over.
 */
export async function incrementsIn(rawDir: string, tables: readonly TableSpec[], after: string | null, applied?: ReadonlySet<string>): Promise<Increment[]> {
  const folder = join(rawDir, INCREMENTS_FOLDER);
  const entries = await readdir(folder, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw new IncrementError(`The increments folder ${folder} could not be read: ${error.message}`);
  });
  // A derived table takes no delivery: the domain fills it from the others.
  const byFile = new Map(tables.filter((table) => table.source !== 'derived').map((table) => [table.file ?? `${table.name}.csv`, table.name]));
  if (after !== null && applied) {
    const late = entries.filter((entry) => entry.isDirectory() && !entry.name.startsWith('.') && !entry.name.startsWith('_') && compareIncrementNames(entry.name, after) < 0 && !applied.has(entry.name));
    if (late.length > 0) {
      throw new IncrementError(
        `Increment ${late.map((entry) => entry.name.slice(0, 80)).sort(compareIncrementNames).join(', ')} arrived after ${after}, the serving version's watermark, was merged: it would be passed over. Deliver it again under a name after ${after}.`,
      );
    }
  }
  const names = entries
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.') && !entry.name.startsWith('_'))
    .map((entry) => entry.name)
    .filter((name) => after === null || compareIncrementNames(name, after) > 0)
    .sort(compareIncrementNames);
  const increments: Increment[] = [];
  for (const name of names) {
    if (!NAME.test(name)) throw new IncrementError(`Increment folder "${name.slice(0, 80)}" is not a valid name (letters, digits, . _ -; at most 128).`);
    const dir = join(folder, name);
    const files = new Map<string, string>();
    let newest = 0;
    for (const file of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const table = byFile.get(file.name);
      if (!file.isFile() || table === undefined) throw new IncrementError(`Increment ${name} holds "${file.name.slice(0, 80)}", which is no table's file (${[...byFile.keys()].join(', ')}).`);
      files.set(table, join(dir, file.name));
      newest = Math.max(newest, (await stat(join(dir, file.name))).mtimeMs);
    }
    if (files.size === 0) throw new IncrementError(`Increment ${name} holds no file.`);
    increments.push({ name, files, deliveredAt: new Date(newest).toISOString() });
  }
  return increments;
}

/** The first line of a CSV file, split (increment headers name plain columns: no quoting needed). */
async function headerOf(file: string): Promise<string[]> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const text = buffer.subarray(0, bytesRead).toString('utf8');
    const end = text.search(/\r?\n/);
    return (end === -1 ? text : text.slice(0, end)).split(',').map((name) => name.replace(/^"|"$/g, ''));
  } finally {
    await handle.close();
  }
}

/**
 * Loads every increment's file of each table into `_increment_<table>` (its raw columns, `_deleted`
 * and the increment's ordinal), dropping what an earlier, interrupted merge left; with `base` (table
 * → its full file), that file first. Returns the tables staged. A file whose header is not the
 * table's raw columns fails the load.
 */
export async function stageIncrements(warehouse: Warehouse<unknown>, tables: readonly TableSpec[], increments: readonly Increment[], base?: ReadonlyMap<string, string>): Promise<TableSpec[]> {
  const db = warehouse.db as Kysely<unknown>;
  const changed = tables.filter((table) => base?.has(table.name) || increments.some((increment) => increment.files.has(table.name)));
  for (const table of changed) {
    const staged = stagedTableOf(table.name);
    const raw = table.columns.filter((column) => !column.derived);
    await sql`DROP TABLE IF EXISTS ${sql.table(staged)}`.execute(db);
    let builder = db.schema.createTable(staged);
    for (const column of raw) builder = builder.addColumn(column.name, column.type);
    await builder.addColumn(DELETED_COLUMN, 'varchar').addColumn(ORDINAL_COLUMN, 'integer').execute();
    // A range's reload: the table's full file first (its columns in the declared order, as a full load reads it), before every delivery.
    const full = base?.get(table.name);
    if (full) {
      await warehouse.loadCsv({ table: staged, file: full, columns: raw.map((column) => column.name) });
      await sql`UPDATE ${sql.table(staged)} SET ${sql.ref(ORDINAL_COLUMN)} = -1`.execute(db);
    }
    for (const [ordinal, increment] of increments.entries()) {
      const file = increment.files.get(table.name);
      if (!file) continue;
      const header = await headerOf(file);
      const expected = new Set(raw.map((column) => column.name));
      const unknown = header.filter((name) => !expected.has(name) && name !== DELETED_COLUMN);
      const missing = [...expected].filter((name) => !header.includes(name));
      if (unknown.length > 0 || missing.length > 0 || new Set(header).size !== header.length) {
        throw new IncrementError(
          `Increment ${increment.name}: ${table.file ?? `${table.name}.csv`} must have the columns ${[...expected].join(', ')} (and optionally ${DELETED_COLUMN})` +
            `${missing.length ? `; missing ${missing.join(', ')}` : ''}${unknown.length ? `; unknown ${unknown.map((name) => name.slice(0, 40)).join(', ')}` : ''}.`,
        );
      }
      await warehouse.loadCsv({ table: staged, file, columns: header });
      await sql`UPDATE ${sql.table(staged)} SET ${sql.ref(ORDINAL_COLUMN)} = ${ordinal} WHERE ${sql.ref(ORDINAL_COLUMN)} IS NULL`.execute(db);
    }
    await sql`ANALYZE ${sql.table(staged)}`.execute(db);
  }
  return changed;
}

/** Whether a staged row is a tombstone (`_deleted` is true, t, 1, yes or D). */
const isTombstone = (alias: string) => sql<boolean>`coalesce(lower(${sql.ref(`${alias}.${DELETED_COLUMN}`)}) in ('true', 't', '1', 'yes', 'd'), false)`;

/** A row of `table` has the key of a row of `alias`. */
function sameKey(table: TableSpec, alias: string, other: string) {
  return sql.join(
    table.primaryKey.map((column) => sql`${sql.ref(`${alias}.${column}`)} = ${sql.ref(`${other}.${column}`)}`),
    sql` and `,
  );
}

/**
 * Merges the staged increments into their tables, delivery by delivery, and records which keys each
 * table's increments touched in `_changed_<table>`. Returns each table's rows inserted, updated and
 * deleted (a key deleted that was not there counts for nothing).
 */
export async function mergeStaged(db: Kysely<any>, tables: readonly TableSpec[], deliveries: number): Promise<Record<string, TableChanges>> {
  const changes: Record<string, TableChanges> = {};
  for (const table of tables) {
    const staged = stagedTableOf(table.name);
    const written = writtenColumns(table);
    const keys = sql.join(table.primaryKey.map((column) => sql.ref(column)));
    const counts: TableChanges = { inserted: 0, updated: 0, deleted: 0 };
    for (let ordinal = 0; ordinal < deliveries; ordinal += 1) {
      const delivery = sql`${sql.ref(`s.${ORDINAL_COLUMN}`)} = ${ordinal}`;
      // Rows of the delivery, and those whose key the table has (a semi-join: index lookups where there is an index).
      const all = await sql<{ tombstone: boolean; n: number | string }>`
        select ${isTombstone('s')} as tombstone, count(*) as n from ${sql.table(staged)} as s where ${delivery} group by 1`.execute(db);
      if (all.rows.length === 0) continue;
      const present = await sql<{ tombstone: boolean; n: number | string }>`
        select ${isTombstone('s')} as tombstone, count(*) as n from ${sql.table(staged)} as s
        where ${delivery} and exists (select 1 from ${sql.table(table.name)} as t where ${sameKey(table, 't', 's')}) group by 1`.execute(db);
      const countOf = (rows: readonly { tombstone: boolean; n: number | string }[], tombstone: boolean) => Number(rows.find((row) => Boolean(row.tombstone) === tombstone)?.n ?? 0);
      const replaced = countOf(present.rows, true) + countOf(present.rows, false);
      counts.deleted += countOf(present.rows, true);
      counts.updated += countOf(present.rows, false);
      counts.inserted += countOf(all.rows, false) - countOf(present.rows, false);
      // New keys only (most of a delivery): nothing to delete, and no scan of the table for it.
      // A join (USING), not a correlated EXISTS: DuckDB runs the EXISTS on a key of two columns five times slower.
      if (replaced > 0) await sql`DELETE FROM ${sql.table(table.name)} AS t USING ${sql.table(staged)} AS s WHERE ${delivery} and ${sameKey(table, 't', 's')}`.execute(db);
      await sql`INSERT INTO ${sql.table(table.name)} (${written.names}) SELECT ${written.values} FROM ${sql.table(staged)} AS s WHERE ${delivery} AND NOT ${isTombstone('s')}`.execute(db);
    }
    await sql`DROP TABLE IF EXISTS ${sql.table(changedTableOf(table.name))}`.execute(db);
    await sql`CREATE TABLE ${sql.table(changedTableOf(table.name))} AS SELECT DISTINCT ${keys} FROM ${sql.table(staged)}`.execute(db);
    // Statistics of the small tables the checks and derivations join to (PostgreSQL plans by them).
    await sql`ANALYZE ${sql.table(changedTableOf(table.name))}`.execute(db);
    await sql`DROP VIEW IF EXISTS ${sql.table(changedRowsOf(table.name))}`.execute(db);
    await sql`CREATE VIEW ${sql.table(changedRowsOf(table.name))} AS SELECT * FROM ${sql.table(table.name)} AS t
      WHERE exists (select 1 from ${sql.table(changedTableOf(table.name))} as c where ${sameKey(table, 'c', 't')})`.execute(db);
    changes[table.name] = counts;
  }
  return changes;
}

/** A range of a table's rows by a time column: from one day to another, both included (`YYYY-MM-DD`). */
export interface RowRange {
  readonly column: string;
  readonly from: string;
  readonly to: string;
}

/** The day after a `YYYY-MM-DD` date. */
const dayAfter = (date: string): string => new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);

/** A row of `alias` falls in the range (its days, both included). */
export const rangeCondition = (alias: string, range: RowRange) =>
  sql`${sql.ref(`${alias}.${range.column}`)} >= cast(${`${range.from} 00:00:00`} as timestamp) and ${sql.ref(`${alias}.${range.column}`)} < cast(${`${dayAfter(range.to)} 00:00:00`} as timestamp)`;

/**
 * A range's reload (a backfill): `_increment_<table>` holds the table's full file and the deliveries
 * the serving version applied (stageIncrements with a base); each key's latest row there that is no
 * tombstone and falls in the range replaces the served rows of the range (and a served row out of
 * the range whose key it holds: a row moved into it). Rows out of the range are not touched.
 * `_changed_<table>` then holds the keys it touched, as a merge's. Returns what it did to the table.
 */
export async function mergeRange(db: Kysely<any>, table: TableSpec, range: RowRange): Promise<TableChanges> {
  const staged = stagedTableOf(table.name);
  const written = writtenColumns(table);
  const keys = sql.join(table.primaryKey.map((column) => sql.ref(column)));
  const inRange = (alias: string) => rangeCondition(alias, range);
  // What the sources say of the range: each key's latest row, if it is no tombstone and in the range.
  await sql`DELETE FROM ${sql.table(staged)} AS s WHERE exists (select 1 from ${sql.table(staged)} as later where ${sameKey(table, 'later', 's')} and ${sql.ref(`later.${ORDINAL_COLUMN}`)} > ${sql.ref(`s.${ORDINAL_COLUMN}`)})`.execute(db);
  await sql`DELETE FROM ${sql.table(staged)} AS s WHERE ${isTombstone('s')} OR NOT (${inRange('s')}) OR ${sql.ref(`s.${range.column}`)} IS NULL`.execute(db);
  const count = async (query: ReturnType<typeof sql>) => Number((await sql<{ n: number | string }>`select count(*) as n from (${query}) as q`.execute(db)).rows[0]?.n ?? 0);
  const served = sql`select 1 from ${sql.table(table.name)} as t where (${inRange('t')}) or exists (select 1 from ${sql.table(staged)} as s where ${sameKey(table, 's', 't')})`;
  const before = await count(served);
  const reloaded = await count(sql`select 1 from ${sql.table(staged)}`);
  const kept = await count(sql`select 1 from ${sql.table(staged)} as s where exists (select 1 from ${sql.table(table.name)} as t where ${sameKey(table, 't', 's')})`);
  await sql`DROP TABLE IF EXISTS ${sql.table(changedTableOf(table.name))}`.execute(db);
  await sql`CREATE TABLE ${sql.table(changedTableOf(table.name))} AS
    SELECT ${keys} FROM ${sql.table(table.name)} AS t WHERE ${inRange('t')} UNION SELECT ${keys} FROM ${sql.table(staged)}`.execute(db);
  await sql`ANALYZE ${sql.table(changedTableOf(table.name))}`.execute(db);
  await sql`DELETE FROM ${sql.table(table.name)} AS t USING ${sql.table(changedTableOf(table.name))} AS c WHERE ${sameKey(table, 'c', 't')}`.execute(db);
  await sql`INSERT INTO ${sql.table(table.name)} (${written.names}) SELECT ${written.values} FROM ${sql.table(staged)}`.execute(db);
  await sql`DROP VIEW IF EXISTS ${sql.table(changedRowsOf(table.name))}`.execute(db);
  await sql`CREATE VIEW ${sql.table(changedRowsOf(table.name))} AS SELECT * FROM ${sql.table(table.name)} AS t
    WHERE exists (select 1 from ${sql.table(changedTableOf(table.name))} as c where ${sameKey(table, 'c', 't')})`.execute(db);
  return { inserted: reloaded - kept, updated: kept, deleted: before - kept };
}

/** Drops the staging, change and before-image tables of a merge (in its transaction, so that a rejected merge keeps them). */
export async function dropStaging(db: Kysely<any>, tables: readonly TableSpec[]): Promise<void> {
  for (const table of tables) {
    await sql`DROP TABLE IF EXISTS ${sql.table(beforeTableOf(table.name))}`.execute(db);
    await sql`DROP VIEW IF EXISTS ${sql.table(changedRowsOf(table.name))}`.execute(db);
    await sql`DROP TABLE IF EXISTS ${sql.table(stagedTableOf(table.name))}`.execute(db);
    await sql`DROP TABLE IF EXISTS ${sql.table(changedTableOf(table.name))}`.execute(db);
  }
}

/** A delivery applied, as the warehouse records it. */
export interface AppliedIncrement {
  readonly name: string;
  readonly appliedAt: string;
  readonly deliveredAt: string;
}

/** Records the deliveries a version applied (creating the record in a new version). */
export async function recordIncrements(db: Kysely<any>, increments: readonly Increment[], appliedAt: Date): Promise<void> {
  await db.schema
    .createTable(INCREMENTS_TABLE)
    .ifNotExists()
    .addColumn('name', 'varchar', (c) => c.notNull())
    .addColumn('applied_at', 'varchar', (c) => c.notNull())
    .addColumn('delivered_at', 'varchar', (c) => c.notNull())
    .execute();
  if (increments.length === 0) return;
  await db
    .insertInto(INCREMENTS_TABLE)
    .values(increments.map((increment) => ({ name: increment.name, applied_at: appliedAt.toISOString(), delivered_at: increment.deliveredAt })))
    .execute();
}

/** The deliveries a version applied, in order (none for a version that records none). */
export async function appliedIncrements(db: Kysely<any>): Promise<AppliedIncrement[]> {
  try {
    const rows = await db.selectFrom(INCREMENTS_TABLE).select(['name', 'applied_at', 'delivered_at']).execute();
    return rows
      .map((row: { name: string; applied_at: string; delivered_at: string }) => ({ name: row.name, appliedAt: row.applied_at, deliveredAt: row.delivered_at }))
      .sort((a: AppliedIncrement, b: AppliedIncrement) => compareIncrementNames(a.name, b.name));
  } catch {
    return [];
  }
}
