/**
 * Masking strategies: what form a visible field takes for a principal who is not exempt.
 *
 * At least as rich as the warehouses' own masking rules (BigQuery: hash, nullify, default value,
 * email mask, first/last four characters, date year), plus REDACT, which fits any GraphQL type:
 * null where the type allows it, a fixed placeholder of the right type otherwise.
 */
import { createHmac } from 'node:crypto';
import { LRUCache } from 'lru-cache';

export const MASK_STRATEGIES = ['REDACT', 'NULLIFY', 'DEFAULT', 'HASH', 'EMAIL', 'FIRST4', 'LAST4', 'DATE_YEAR', 'ROUND', 'BUCKET'] as const;
export type MaskStrategy = (typeof MASK_STRATEGIES)[number];

export function isMaskStrategy(value: unknown): value is MaskStrategy {
  return typeof value === 'string' && (MASK_STRATEGIES as readonly string[]).includes(value);
}

/** How much a strategy hides: a domain may replace a default mask only by one at least as strong. */
export const MASK_STRENGTH: Readonly<Record<MaskStrategy, number>> = {
  ROUND: 1,
  BUCKET: 1,
  DATE_YEAR: 1,
  FIRST4: 1,
  LAST4: 1,
  EMAIL: 1,
  HASH: 2,
  DEFAULT: 3,
  NULLIFY: 3,
  REDACT: 3,
};

/** The shape of the field a strategy is applied to. */
export interface MaskedType {
  /** The named type: String, ID, Int, Float, Boolean, LocalDate, DateTime, or an enum. */
  readonly name: string;
  /** The (innermost) value is non-null. */
  readonly nonNull: boolean;
  /** The values of an enum type, in their declared order; absent for scalars. */
  readonly enumValues?: readonly string[];
}

/** The scalar types masks apply to; object fields are protected through their own fields. */
export const MASKABLE_SCALARS = ['String', 'ID', 'Int', 'Float', 'Boolean', 'LocalDate', 'DateTime'];

const TEXT = ['String', 'ID'];
const NUMBER = ['Int', 'Float'];
const DATES = ['LocalDate', 'DateTime'];

/** Why a strategy does not fit a type, or null when it does. */
export function maskMisfit(strategy: MaskStrategy, type: MaskedType): string | null {
  if (type.enumValues) {
    // An enum has no value that says "hidden": it is masked to null (or, declared, to its first value).
    if (strategy === 'DEFAULT') return type.enumValues.length > 0 ? null : `${type.name} has no value to default to`;
    if (strategy !== 'REDACT' && strategy !== 'NULLIFY') return `${strategy} does not fit an enum (${type.name}); use REDACT, NULLIFY or DEFAULT`;
    return type.nonNull ? `a non-null enum (${type.name}!) has no value to ${strategy === 'REDACT' ? 'redact' : 'nullify'} to; make the field nullable` : null;
  }
  if (!MASKABLE_SCALARS.includes(type.name)) return `masks apply to scalar and enum fields, and ${type.name} is not one`;
  const fits: Record<MaskStrategy, boolean> = {
    REDACT: true,
    NULLIFY: !type.nonNull,
    DEFAULT: [...TEXT, ...NUMBER, 'Boolean', ...DATES].includes(type.name),
    HASH: TEXT.includes(type.name),
    EMAIL: type.name === 'String',
    FIRST4: TEXT.includes(type.name),
    LAST4: TEXT.includes(type.name),
    DATE_YEAR: DATES.includes(type.name),
    ROUND: NUMBER.includes(type.name),
    BUCKET: NUMBER.includes(type.name),
  };
  if (fits[strategy]) return null;
  if (strategy === 'NULLIFY') return `NULLIFY needs a nullable field, and ${type.name}! is not`;
  return `${strategy} does not fit a ${type.name} field`;
}

const PLACEHOLDERS: Readonly<Record<string, unknown>> = {
  String: '[REDACTED]',
  ID: '[REDACTED]',
  Int: 0,
  Float: 0,
  Boolean: false,
  LocalDate: '1970-01-01',
  DateTime: '1970-01-01T00:00:00.000Z',
};

const DEFAULTS: Readonly<Record<string, unknown>> = { ...PLACEHOLDERS, String: '', ID: '' };

export interface MaskOptions {
  readonly strategy: MaskStrategy;
  readonly type: MaskedType;
  /** The step of ROUND and BUCKET (default 1). */
  readonly size?: number;
  /** The HMAC key of HASH. */
  readonly hashKey: string;
}

export type Masker = (value: unknown) => unknown;

/** The development key of HASH: public on purpose, refused in production. */
export const DEV_HASH_KEY = 'local-development-mask-key-do-not-use-in-production';

/** The HMAC key of HASH (env `MASK_HASH_KEY`, at least 32 characters; required in production). */
export function hashKeyFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const key = env.MASK_HASH_KEY || DEV_HASH_KEY;
  if (env.NODE_ENV === 'production' && key === DEV_HASH_KEY) throw new Error('MASK_HASH_KEY must be set in production.');
  if (key.length < 32) throw new Error('MASK_HASH_KEY must be at least 32 characters long.');
  return key;
}

const scopedKeys = new Map<string, string>();

/**
 * The HASH key of one field, or of one join group: an HMAC of its scope under `MASK_HASH_KEY`, so
 * that no two fields share a key unless they declare the same join group.
 */
export function scopedHashKey(hashKey: string, scope: { readonly coordinate: string; readonly joinGroup?: string | undefined }): string {
  const name = scope.joinGroup ? `join-group:${scope.joinGroup}` : `field:${scope.coordinate}`;
  // Derived once per key and field, not once per request: masks are built for every request.
  const cacheKey = `${hashKey}\u0000${name}`;
  let derived = scopedKeys.get(cacheKey);
  if (!derived) {
    derived = createHmac('sha256', hashKey).update(name).digest('hex');
    // Bounded by the schema's fields (and the few keys a process holds); cleared if ever exceeded.
    if (scopedKeys.size >= 10_000) scopedKeys.clear();
    scopedKeys.set(cacheKey, derived);
  }
  return derived;
}


// The pseudonyms of values masked lately, by key and value, bounded: a value read again (a
// dashboard's customers on every refresh, a customer in each of their orders) is not hashed again.
// They stay in the process that holds the values anyway, and leave it only as masked answers.
const recentPseudonyms = new LRUCache<string, string>({ maxSize: 32 * 1024 * 1024, sizeCalculation: (_pseudonym, key) => key.length * 2 + 200 });

/** A function that masks one value (not a list: callers map lists). Null stays null. */
export function createMasker(options: MaskOptions): Masker {
  const { strategy, type } = options;
  const size = options.size && options.size > 0 ? options.size : 1;
  const apply = (value: unknown): unknown => {
    switch (strategy) {
      case 'REDACT':
        return type.nonNull && !type.enumValues ? (PLACEHOLDERS[type.name] ?? '[REDACTED]') : null;
      case 'NULLIFY':
        return null;
      case 'DEFAULT':
        return type.enumValues ? (type.enumValues[0] ?? null) : (DEFAULTS[type.name] ?? null);
      case 'HASH': {
        // Keyed and stable: masked values can still be counted, grouped and joined.
        const text = String(value);
        const remembered = `${options.hashKey.length}:${options.hashKey}${text}`; // the length says where the key ends
        let pseudonym = recentPseudonyms.get(remembered);
        if (pseudonym === undefined) {
          pseudonym = createHmac('sha256', options.hashKey).update(text).digest('hex');
          recentPseudonyms.set(remembered, pseudonym);
        }
        return pseudonym;
      }
      case 'EMAIL': {
        const text = String(value);
        const at = text.lastIndexOf('@');
        return at >= 0 ? `xxxxx${text.slice(at)}` : 'xxxxx';
      }
      case 'FIRST4':
        return `${String(value).slice(0, 4)}XXXXX`;
      case 'LAST4':
        return `XXXXX${String(value).slice(-4)}`;
      case 'DATE_YEAR': {
        const year = String(value).slice(0, 4);
        return type.name === 'DateTime' ? `${year}-01-01T00:00:00.000Z` : `${year}-01-01`;
      }
      case 'ROUND': {
        const rounded = Math.round(Number(value) / size) * size;
        return type.name === 'Int' ? Math.round(rounded) : Number(rounded.toFixed(10));
      }
      case 'BUCKET': {
        const floor = Math.floor(Number(value) / size) * size;
        return type.name === 'Int' ? Math.round(floor) : Number(floor.toFixed(10));
      }
    }
  };
  return (value) => (value === null || value === undefined ? value : apply(value));
}
