/**
 * What one caller may ask of the gateway: the shape of an operation (tokens, depth, aliases, root
 * fields, directives, fragments), its estimated cost, and the cost it may spend per rate window.
 *
 * Defaults come from the principal's kind (anonymous or signed in); operators raise or lower them
 * per role and per client (the token's `azp`) in one JSON document (env `GATEWAY_LIMITS`, or a file
 * named by `GATEWAY_LIMITS_FILE`):
 *
 *   { "authenticated": { "maxCost": 20000 },
 *     "roles":   { "steward": { "maxDepth": 20 } },
 *     "clients": { "bi-connector": { "maxCost": 100000, "ratePerWindow": 2000000 } } }
 *
 * A client's entry wins over its roles' entries; among several roles, the most generous value wins.
 */
import { readFileSync } from 'node:fs';
import type { Principal } from '../../policy/principal.js';

export interface OperationLimits {
  /** Lexical tokens in the document (default 2000): bounds parsing and every later walk. */
  readonly maxTokens: number;
  /** Nesting depth of fields, fragments flattened, introspection excepted (default 15). */
  readonly maxDepth: number;
  /** Aliased fields in the operation, fragments included (default 30). */
  readonly maxAliases: number;
  /** Fields at the root of the operation (default 15). */
  readonly maxRootFields: number;
  /** Directives in the operation, fragments included (default 50). */
  readonly maxDirectives: number;
  /** Fragment definitions in the document (default 30). */
  readonly maxFragments: number;
}

export interface Allowance extends OperationLimits {
  /** The highest estimated cost of one operation (`@cost`/`@listSize`); anonymous 2000, signed in 100000. */
  readonly maxCost: number;
  /** Cost units one subject or client may spend per rate window; anonymous 20000, signed in 2000000. */
  readonly ratePerWindow: number;
  /** Subscriptions one subject may have open at once (default 100; anonymous callers cannot subscribe). */
  readonly maxSubscriptions: number;
  /** Subscriptions one verified client (the token's `azp`) may have open at once, all its users together (default 1000). */
  readonly maxClientSubscriptions: number;
  /** Events one subscription receives per second, at most (default 100); more wait, and a subscriber that falls too far behind is ended. */
  readonly subscriptionEventsPerSecond: number;
}

export interface LimitsConfig {
  /** Anonymous callers (and the base of every other allowance). */
  readonly anonymous: Allowance;
  /** Signed-in callers: what differs from `anonymous`. */
  readonly authenticated: Partial<Allowance>;
  readonly roles: Readonly<Record<string, Partial<Allowance>>>;
  readonly clients: Readonly<Record<string, Partial<Allowance>>>;
  /** The rate window in seconds (default 60). */
  readonly rateWindowSeconds: number;
}

export const DEFAULT_LIMITS: LimitsConfig = {
  anonymous: {
    maxTokens: 2000,
    maxDepth: 15,
    maxAliases: 30,
    maxRootFields: 15,
    maxDirectives: 50,
    maxFragments: 30,
    maxCost: 2_000,
    ratePerWindow: 20_000,
    maxSubscriptions: 100,
    maxClientSubscriptions: 1_000,
    subscriptionEventsPerSecond: 100,
  },
  authenticated: { maxCost: 100_000, ratePerWindow: 2_000_000 },
  roles: {},
  clients: {},
  rateWindowSeconds: 60,
};

export class LimitsConfigError extends Error {
  override name = 'LimitsConfigError';
}

const KEYS = Object.keys(DEFAULT_LIMITS.anonymous) as (keyof Allowance)[];

function partialAllowance(value: unknown, where: string): Partial<Allowance> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new LimitsConfigError(`${where} must be an object.`);
  const out: Partial<Record<keyof Allowance, number>> = {};
  for (const [key, raw] of Object.entries(value)) {
    if (!KEYS.includes(key as keyof Allowance)) throw new LimitsConfigError(`${where}.${key} is not a limit (one of ${KEYS.join(', ')}).`);
    if (!Number.isSafeInteger(raw) || (raw as number) < 1) throw new LimitsConfigError(`${where}.${key} must be a whole number of at least 1, got ${JSON.stringify(raw)}.`);
    out[key as keyof Allowance] = raw as number;
  }
  return out;
}

function entries(value: unknown, where: string): Record<string, Partial<Allowance>> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new LimitsConfigError(`${where} must be an object of name → limits.`);
  return Object.fromEntries(Object.entries(value).map(([name, limits]) => [name, partialAllowance(limits, `${where}.${name}`)]));
}

/** Reads a limits document over the defaults; every mistake is refused with where it is. */
export function parseLimitsConfig(text: string): LimitsConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new LimitsConfigError(`The limits configuration is not JSON: ${(error as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new LimitsConfigError('The limits configuration must be a JSON object.');
  const known = ['anonymous', 'authenticated', 'roles', 'clients', 'rateWindowSeconds'];
  const unknown = Object.keys(raw).filter((key) => !known.includes(key));
  if (unknown.length > 0) throw new LimitsConfigError(`Unknown key ${unknown.map((k) => `"${k}"`).join(', ')} in the limits configuration (known: ${known.join(', ')}).`);
  const doc = raw as Record<string, unknown>;
  const window = doc.rateWindowSeconds ?? DEFAULT_LIMITS.rateWindowSeconds;
  if (!Number.isSafeInteger(window) || (window as number) < 1) throw new LimitsConfigError(`rateWindowSeconds must be a whole number of at least 1, got ${JSON.stringify(window)}.`);
  return {
    anonymous: { ...DEFAULT_LIMITS.anonymous, ...(doc.anonymous === undefined ? {} : partialAllowance(doc.anonymous, 'anonymous')) },
    authenticated: { ...DEFAULT_LIMITS.authenticated, ...(doc.authenticated === undefined ? {} : partialAllowance(doc.authenticated, 'authenticated')) },
    roles: entries(doc.roles, 'roles'),
    clients: entries(doc.clients, 'clients'),
    rateWindowSeconds: window as number,
  };
}

/** The limits from env `GATEWAY_LIMITS` (JSON) or `GATEWAY_LIMITS_FILE` (a JSON file), else the defaults. */
export function limitsConfigFromEnv(env: NodeJS.ProcessEnv): LimitsConfig {
  if (env.GATEWAY_LIMITS && env.GATEWAY_LIMITS_FILE) throw new LimitsConfigError('Set GATEWAY_LIMITS or GATEWAY_LIMITS_FILE, not both.');
  if (env.GATEWAY_LIMITS) return parseLimitsConfig(env.GATEWAY_LIMITS);
  if (env.GATEWAY_LIMITS_FILE) {
    let text: string;
    try {
      text = readFileSync(env.GATEWAY_LIMITS_FILE, 'utf8');
    } catch (error) {
      throw new LimitsConfigError(`GATEWAY_LIMITS_FILE cannot be read: ${(error as Error).message}`);
    }
    return parseLimitsConfig(text);
  }
  return DEFAULT_LIMITS;
}

export type AllowanceOf = (principal: Principal) => Allowance;

/** The allowance of each principal, resolved once per kind, roles and client. */
export function createAllowances(config: LimitsConfig): AllowanceOf {
  const cache = new Map<string, Allowance>();
  return (principal) => {
    const key = `${principal.anonymous ? 'a' : 's'}|${principal.client ?? ''}|${principal.roles.join(',')}`;
    let allowance = cache.get(key);
    if (!allowance) {
      let resolved: Allowance = principal.anonymous ? config.anonymous : { ...config.anonymous, ...config.authenticated };
      const roleEntries = principal.anonymous ? [] : principal.roles.map((role) => config.roles[role]).filter((e) => e !== undefined);
      if (roleEntries.length > 0) {
        // The most generous value among the caller's roles, for each limit a role sets.
        const generous: Record<string, number> = { ...resolved };
        for (const limit of KEYS) {
          const values = roleEntries.map((entry) => entry[limit]).filter((v): v is number => v !== undefined);
          if (values.length > 0) generous[limit] = Math.max(...values);
        }
        resolved = generous as unknown as Allowance;
      }
      const clientEntry = !principal.anonymous && principal.client ? config.clients[principal.client] : undefined;
      if (clientEntry) resolved = { ...resolved, ...clientEntry };
      allowance = Object.freeze(resolved);
      // Bounded: a key per distinct kind, client and role set; clients come from verified tokens.
      if (cache.size < 10_000) cache.set(key, allowance);
    }
    return allowance;
  };
}
