/**
 * How fresh a data product is against its service level: when its serving version was loaded, how
 * long ago that is, and the newest record it holds on the column its SLA names; measured against
 * the SLA's `latency` (ODCS's preferred property; `freshness` is read too), else its update
 * `frequency`. A product whose last load is older than that is stale.
 */
import { sql } from 'kysely';
import type { SlaProperty } from './data-product.js';
import type { Domain } from './domain.js';
import { openWarehouse } from './warehouse/open.js';

/** What the serving version says of its load: when it was built, and each product's newest record. */
export interface LoadFacts {
  /** ISO 8601, or null for a warehouse that does not say. */
  readonly loadedAt: string | null;
  /** Per product id: the newest value of the column its SLA names (ISO 8601), when it names one. */
  readonly newest: Readonly<Record<string, string | null>>;
}

export interface Freshness {
  readonly loadedAt: string | null;
  readonly newestRecordAt: string | null;
  /** Seconds since the serving version was loaded. */
  readonly ageSeconds: number | null;
  /** The SLA's latency (or freshness, or update frequency), in seconds. */
  readonly slaSeconds: number | null;
  /** `stale` once the age passes the SLA; `unknown` without a load time or an SLA. */
  readonly status: 'fresh' | 'stale' | 'unknown';
}

const SECONDS: Record<string, number> = { s: 1, m: 60, min: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 };

/** An SLA property's duration in seconds (null: not a duration, or a unit not known). */
export function durationSecondsOf(promise: SlaProperty | undefined): number | null {
  const unit = SECONDS[(promise?.unit ?? '').toLowerCase()];
  return promise && unit !== undefined && Number.isFinite(Number(promise.value)) ? Number(promise.value) * unit : null;
}

/** A product's freshness threshold from its SLA: latency, else freshness, else frequency (null: none). */
export function slaSecondsOf(sla: readonly SlaProperty[]): number | null {
  for (const property of ['latency', 'freshness', 'frequency']) {
    const seconds = durationSecondsOf(sla.find((candidate) => (candidate.property as string) === property));
    if (seconds !== null) return seconds;
  }
  return null;
}

export function freshnessOf(facts: LoadFacts, productId: string, sla: readonly SlaProperty[], now: Date): Freshness {
  const slaSeconds = slaSecondsOf(sla);
  const ageSeconds = facts.loadedAt ? Math.max(0, Math.round((now.getTime() - Date.parse(facts.loadedAt)) / 1000)) : null;
  const status = ageSeconds === null || slaSeconds === null ? 'unknown' : ageSeconds > slaSeconds ? 'stale' : 'fresh';
  return { loadedAt: facts.loadedAt, newestRecordAt: facts.newest[productId] ?? null, ageSeconds, slaSeconds, status };
}

/** The column a product's SLA measures its latency on (its newest record), if it names one. */
export const latencyColumnOf = (sla: readonly SlaProperty[]): string | undefined => sla.find((promise) => promise.property === 'latency' && promise.element)?.element;

/** Reads the load facts of the warehouse at a URL, read-only, beside the serving connection. */
export async function loadFactsAt(url: string, domain: Domain<any, any>): Promise<LoadFacts> {
  const warehouse = openWarehouse<any>(url, { readOnly: true });
  try {
    const built = await sql<{ built_at: string }>`select built_at from _warehouse_build`.execute(warehouse.db).catch(() => ({ rows: [] as { built_at: string }[] }));
    const newest: Record<string, string | null> = {};
    for (const { spec } of domain.dataProducts) {
      const element = latencyColumnOf(spec.metadata.sla);
      if (!element) continue;
      const row = await sql<{ newest: string | null }>`select max(${sql.ref(element)}) as newest from ${sql.table(spec.table)}`.execute(warehouse.db).catch(() => ({ rows: [] as { newest: string | null }[] }));
      newest[`${domain.name}.${spec.name}`] = row.rows[0]?.newest ?? null;
    }
    return { loadedAt: built.rows[0]?.built_at ?? null, newest };
  } finally {
    await warehouse.close();
  }
}
