/**
 * Sensitive-data discovery: what a data product's load found in its columns (the profile), and the
 * governance findings it leads to when set against the policy that serves them.
 *
 * Each load profiles every column of each product's table (subgraphs/kit/profiles.ts): null share,
 * distinct count, min and max (for numbers and dates; lengths for text), and the share of sampled
 * values each detector recognises (emails, phone numbers, payment cards, IBANs, national ids, birth
 * dates, person names). A profile carries no value of a column that holds personal data: text
 * columns give lengths only, and min and max are withheld for fields tagged pii, masked, or
 * recognised by a detector.
 *
 * The registry's check and the subgraph's start-up set the profiles against the policy:
 * - a column that looks like personal data behind a field not tagged `pii` (the field, the detector
 *   and the share of matching values are named);
 * - a `HASH` mask (in force or in shadow) on a column with fewer distinct values than the threshold,
 *   whose values repeat: a keyed hash of a handful of values is decoded by their frequencies, so
 *   REDACT or a generalization (ROUND, BUCKET, DATE_YEAR, …) must be used instead.
 */
import type { PolicyIndex } from './policy-index.js';
import type { DiscoveryRules, GovernanceRules } from './rules.js';

export type { DiscoveryRules } from './rules.js';

/** What the detectors recognise. */
export const DETECTORS = ['email', 'phone', 'paymentCard', 'iban', 'nationalId', 'birthDate', 'personName'] as const;
export type Detector = (typeof DETECTORS)[number];

/** What each detector stands for, in findings and in the catalog. */
export const DETECTOR_DESCRIPTIONS: Readonly<Record<Detector, string>> = {
  email: 'email addresses',
  phone: 'phone numbers',
  paymentCard: 'payment card numbers (Luhn)',
  iban: 'IBANs',
  nationalId: 'national identity numbers',
  birthDate: 'birth dates',
  personName: 'person names',
};

/** The share of sampled values a detector recognised in a column. */
export interface Detection {
  readonly detector: Detector;
  /** 0 to 1, of `sampled` values. */
  readonly share: number;
}

/** One column of a product's table, as its load found it. */
export interface ColumnProfile {
  /** The table's column. */
  readonly column: string;
  /** The GraphQL field that serves it (null: the product serves it under no field). */
  readonly field: string | null;
  /** The warehouse type (`varchar`, `integer`, `date`, `decimal(12,2)`, …). */
  readonly type: string;
  /** Null rows over all rows (0 for an empty table). */
  readonly nullShare: number;
  readonly distinctCount: number;
  /** Smallest and largest value (numbers and dates), as text; null for text columns and where withheld. */
  readonly min: string | null;
  readonly max: string | null;
  /** Shortest and longest value, in characters (text columns). */
  readonly minLength: number | null;
  readonly maxLength: number | null;
  /** The mean of a number column's values (null for other columns and where withheld): the anomaly detector's numeric summary. */
  readonly mean: number | null;
  /** Min and max are not given: the field is tagged pii or masked, or a detector recognised its values. */
  readonly withheld: boolean;
  /** Non-null values the detectors looked at (at most the profile's sample size). */
  readonly sampled: number;
  /** The exact counts an incremental load updates the profile from (absent in a profile made before they were kept). */
  readonly filledCount?: number;
  /** The sum of a number column's values (null for other columns). */
  readonly sum?: number | null;
  /** Detectors that recognised at least one sampled value, strongest first. */
  readonly detections: readonly Detection[];
}

/** A product's profile: made at one load. */
export interface ProductProfile {
  /** `<domain>.<product>`. */
  readonly product: string;
  readonly table: string;
  /** When the load profiled it (ISO 8601). */
  readonly profiledAt: string;
  readonly rows: number;
  readonly columns: readonly ColumnProfile[];
}

/** How discovery findings are judged (governance rules' `discovery`). */
export const DEFAULT_DISCOVERY_RULES: DiscoveryRules = { minimumShare: 0.5, hashMinimumDistinct: 50, severity: 'error' };

export function discoveryRulesOf(rules: GovernanceRules): DiscoveryRules {
  return { ...DEFAULT_DISCOVERY_RULES, ...rules.discovery };
}

export type DiscoveryCode = 'GOVERNANCE_PII_UNDECLARED' | 'GOVERNANCE_HASH_LOW_CARDINALITY';

export interface DiscoveryFinding {
  readonly code: DiscoveryCode;
  readonly severity: 'error' | 'warning';
  /** `Type.field`. */
  readonly coordinate: string;
  readonly message: string;
}

/** A product's profile with what the policy needs to judge it: the type that serves the product. */
export interface ProfiledProduct {
  readonly typeName: string;
  readonly profile: ProductProfile;
  /** Which field serves each column (default: the profile's own `field`): a contract's mapping, when judged against one. */
  readonly fieldOf?: ReadonlyMap<string, string>;
}

const percent = (share: number) => `${Math.round(share * 1000) / 10}%`;

/** The strongest detection that says a column holds personal data, if any. */
export function personalDataIn(column: Pick<ColumnProfile, 'detections'>, rules: DiscoveryRules): Detection | null {
  return column.detections.find((detection) => detection.share >= rules.minimumShare) ?? null;
}

/**
 * The findings of a set of profiles against a policy. Fields the policy does not know (no longer
 * served) are skipped.
 */
export function discoveryFindings(products: readonly ProfiledProduct[], policy: PolicyIndex, governance: GovernanceRules): DiscoveryFinding[] {
  const rules = discoveryRulesOf(governance);
  const findings: DiscoveryFinding[] = [];
  for (const { typeName, profile, fieldOf } of products) {
    for (const column of profile.columns) {
      const field = fieldOf ? (fieldOf.get(column.column) ?? null) : column.field;
      if (!field) continue;
      const coordinate = `${typeName}.${field}`;
      const fieldPolicy = policy.fields.get(coordinate);
      if (!fieldPolicy) continue;
      const found = personalDataIn(column, rules);
      if (found && !fieldPolicy.tags.includes('pii')) {
        findings.push({
          code: 'GOVERNANCE_PII_UNDECLARED',
          severity: rules.severity,
          coordinate,
          message:
            `${coordinate} is not tagged pii, but ${percent(found.share)} of the ${column.sampled} values of ${profile.table}.${column.column} sampled at the load of ${profile.profiledAt} ` +
            `look like ${DETECTOR_DESCRIPTIONS[found.detector]} (detector ${found.detector}): classify it with tags: ["pii"] (and mask or restrict it), or stop serving the column.`,
        });
      }
      for (const [mask, state] of [
        [fieldPolicy.mask, 'masked'],
        [fieldPolicy.shadow.mask, 'to be masked (shadow)'],
      ] as const) {
        if (mask?.strategy !== 'HASH') continue;
        const nonNull = Math.round(profile.rows * (1 - column.nullShare));
        if (column.distinctCount >= rules.hashMinimumDistinct || column.distinctCount >= nonNull) continue;
        findings.push({
          code: 'GOVERNANCE_HASH_LOW_CARDINALITY',
          severity: rules.severity,
          coordinate,
          message:
            `${coordinate} is ${state} with HASH, but ${profile.table}.${column.column} holds only ${column.distinctCount} distinct values over ${nonNull} rows (fewer than ${rules.hashMinimumDistinct}): ` +
            `a hash of so few values is decoded by counting how often each appears. Use REDACT, or a generalization (ROUND, BUCKET, DATE_YEAR, FIRST4, LAST4), instead.`,
        });
      }
    }
  }
  return findings;
}
