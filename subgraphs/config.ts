/**
 * Subgraph configuration, from the environment. Every value has a default that runs the embedded
 * mesh on one machine.
 */
import { join, resolve } from 'node:path';
import { isLevel, type Level } from '../policy/rules.js';
import { DEFAULT_SEED } from './synthetic-sources/manifest.js';

export interface SubgraphConfig {
  /** Root of generated data: `raw/` files and `warehouses/` (env `DATA_DIR`, default `./data`). */
  readonly dataDir: string;
  /** Size of the generated data set (env `SCALE`, default 1: ~10k customers, 100k orders). */
  readonly scale: number;
  /** Seed of the generated data set (env `SEED`). */
  readonly seed: number;
  /** Interface to bind (env `HOST`, default `127.0.0.1`). */
  readonly host: string;
  /** Log level (env `LOG_LEVEL`, default `info`). */
  readonly logLevel: string;
  /** Audit logs, one per service (env `AUDIT_DIR`, default `<DATA_DIR>/audit`). */
  readonly auditDir: string;
  /** Operations with values at or above this level are audited durably first (env `AUDIT_STRICT_LEVEL`). */
  readonly strictAuditLevel: Level;
  /** Data quality checks on the serving warehouse every this many ms (env `QUALITY_CHECK_INTERVAL_MS`, default 900000: 15 min; 0: only at load). */
  readonly qualityIntervalMs: number;
}

export function defineSubgraphConfig(config: SubgraphConfig): SubgraphConfig {
  return config;
}

function numberFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}".`);
  return value;
}

export function strictLevelFrom(value: string | undefined): Level {
  if (!value) return 'RESTRICTED';
  if (!isLevel(value)) throw new Error(`AUDIT_STRICT_LEVEL must be one of PUBLIC, INTERNAL, CONFIDENTIAL, RESTRICTED; got "${value}".`);
  return value;
}

export function subgraphConfigFromEnv(env: NodeJS.ProcessEnv = process.env): SubgraphConfig {
  return defineSubgraphConfig({
    dataDir: resolve(env.DATA_DIR || 'data'),
    scale: numberFrom(env, 'SCALE', 1),
    seed: numberFrom(env, 'SEED', DEFAULT_SEED),
    host: env.HOST || '127.0.0.1',
    logLevel: env.LOG_LEVEL || 'info',
    auditDir: resolve(env.AUDIT_DIR || join(env.DATA_DIR || 'data', 'audit')),
    strictAuditLevel: strictLevelFrom(env.AUDIT_STRICT_LEVEL),
    qualityIntervalMs: env.QUALITY_CHECK_INTERVAL_MS === '0' ? 0 : numberFrom(env, 'QUALITY_CHECK_INTERVAL_MS', 15 * 60_000),
  });
}

export function rawDirOf(config: SubgraphConfig): string {
  return join(config.dataDir, 'raw');
}

/** A domain's warehouse: env `<DOMAIN>_WAREHOUSE_URL`, else a DuckDB file under the data folder. */
export function warehouseUrlOf(domain: string, config: SubgraphConfig, env: NodeJS.ProcessEnv = process.env): string {
  return env[`${domain.toUpperCase()}_WAREHOUSE_URL`] || `duckdb:${join(config.dataDir, 'warehouses', `${domain}.duckdb`)}`;
}

/** A domain's port: env `PORT`, else the port of its URL in the mesh manifest. */
export function portOf(domainUrl: string, env: NodeJS.ProcessEnv = process.env): number {
  if (env.PORT) return Number(env.PORT);
  const url = new URL(domainUrl);
  return Number(url.port || (url.protocol === 'https:' ? 443 : 80));
}
