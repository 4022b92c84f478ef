/**
 * Anomaly detection from a product's own run history (issue 26, part 4): each measure of a run (its
 * rows, its increment, its arrival delay, and per column the null share, the distinct count and the
 * mean) is compared with the band its history predicts, as dbt Elementary's and Soda's anomaly checks
 * do: a robust centre and spread (medians, by simple-statistics: the same weekday's runs for the
 * centre, day-of-week seasonality; every recent run's deviation from its weekday for the spread);
 * outside `sensitivity` spreads of the centre is an anomaly. A column whose values stop
 * changing while they used to change (a frozen column) is one too. Too short a history judges
 * nothing: no alarm before the product has a history.
 */
import { median } from 'simple-statistics';
import type { ProductProfile } from '../../../policy/discovery.js';
import type { QualityDimension, QualityResult } from '../quality.js';

/** What a run measured: the inputs of the detection (and of the run history). */
export interface RunMeasures {
  /** When the run loaded (ISO 8601): its weekday picks the seasonal history. */
  readonly at: string;
  /** Rows of the product after the run. */
  readonly rows: number;
  /** Rows the run brought (inserted, updated, deleted), for an incremental load. */
  readonly increment?: number;
  /** Seconds from the source's newest record to the run: how late the data arrived. */
  readonly arrivalDelaySeconds?: number;
  readonly columns: Readonly<Record<string, { readonly nullShare: number; readonly distinctCount: number; readonly mean?: number | null }>>;
}

export interface Band {
  readonly expected: number;
  readonly low: number;
  readonly high: number;
  /** How many past runs it was computed from, and whether they were the same weekday's. */
  readonly basis: { readonly runs: number; readonly seasonal: boolean };
}

export interface Anomaly {
  /** `rows`, `increment`, `arrivalDelaySeconds`, or `<column>.nullShare`, `<column>.distinctCount`, `<column>.mean`. */
  readonly measure: string;
  readonly kind: 'above' | 'below' | 'frozen';
  /** `error` where the product declares the measure's anomalies errors (its load is rejected), else `warning`. */
  readonly severity: 'warning' | 'error';
  readonly value: number;
  /** The band it left (for a frozen column: the band its changes used to keep). */
  readonly band: Band | null;
  readonly message: string;
}

export interface AnomalyOptions {
  /** Band half-width in robust standard deviations (default 4: over a month of daily runs and a dozen measures, 3 would alarm on normal data every few months). */
  readonly sensitivity?: number;
  /** Fewest past runs to judge by (default 28: four of each weekday for daily runs). */
  readonly minimumHistory?: number;
  /** Same-weekday runs needed to centre the band on them (default 4). */
  readonly seasonalRuns?: number;
  /** Recent runs used (default 56: eight weeks of daily runs). */
  readonly window?: number;
  /** Unchanged runs in a row that make a column frozen (default 3). */
  readonly frozenRuns?: number;
  /** Measures whose anomalies are errors (`rows`, `<column>.nullShare`, `*.mean`, …); the others' are warnings. */
  readonly errors?: readonly string[];
}

const DEFAULTS = { sensitivity: 4, minimumHistory: 28, seasonalRuns: 4, window: 56, frozenRuns: 3, errors: [] as readonly string[] };

/** Whether a measure's anomalies are errors: named, or `*.<summary>` for any column's. */
const isError = (measure: string, errors: readonly string[]) => errors.includes(measure) || (measure.includes('.') && errors.includes(`*.${measure.slice(measure.indexOf('.') + 1)}`));
/** MAD × 1.4826 estimates the standard deviation of a normal distribution. */
const MAD_TO_SIGMA = 1.4826;

const weekday = (at: string) => new Date(at).getUTCDay();

/**
 * The band a measure's history predicts for a run at `at` (null: too little history). Two
 * predictions are tried on the recent runs: the median of the same weekday's runs (day-of-week
 * seasonality) and the median of all of them; each run is predicted from the others (left out of its
 * own prediction, so that a centre's own uncertainty counts) and the one that predicted better is
 * kept: a weekly rhythm where the measure has one, the steadier centre of all runs where it has none.
 * The spread is the median of that prediction's errors, relative where the prediction is not zero (a
 * weekend's volume varies in proportion to its size), as a standard deviation.
 */
export function expectedBand(history: readonly { readonly at: string; readonly value: number }[], at: string, options: AnomalyOptions = {}): Band | null {
  const o = { ...DEFAULTS, ...options };
  if (history.length < o.minimumHistory) return null;
  const recent = history.slice(-o.window);
  const byDay = new Map<number, number[]>();
  for (const point of recent) byDay.set(weekday(point.at), [...(byDay.get(weekday(point.at)) ?? []), point.value]);
  const all = recent.map((point) => point.value);
  /** Each run's error when predicted by the median of its group's other runs (relative, unless that median is zero). */
  const errorsOf = (groupOf: (point: { at: string }) => readonly number[]) =>
    recent.flatMap((point) => {
      const group = [...groupOf(point)];
      group.splice(group.indexOf(point.value), 1);
      if (group.length === 0) return [];
      const predicted = median(group);
      return [{ relative: predicted !== 0, error: Math.abs(point.value - predicted) / (predicted !== 0 ? Math.abs(predicted) : 1) }];
    });
  const sameDay = byDay.get(weekday(at)) ?? [];
  const flat = errorsOf(() => all);
  const weekly = sameDay.length >= o.seasonalRuns ? errorsOf((point) => byDay.get(weekday(point.at))!) : null;
  const typical = (errors: readonly { error: number }[]) => (errors.length > 0 ? median(errors.map((e) => e.error)) : Number.POSITIVE_INFINITY);
  // Which predicts better, judged on every run (a mean, so that the weekends count as much as they err).
  const overall = (errors: readonly { error: number }[]) => (errors.length > 0 ? errors.reduce((sum, e) => sum + e.error, 0) / errors.length : Number.POSITIVE_INFINITY);
  const seasonal = weekly !== null && overall(weekly) < overall(flat);
  const errors = seasonal ? weekly : flat;
  const expected = median(seasonal ? [...sameDay] : all);
  const relative = errors.filter((e) => e.relative);
  const sigma = expected !== 0 && relative.length > 0 ? typical(relative) * MAD_TO_SIGMA * Math.abs(expected) : typical(errors.filter((e) => !e.relative)) * MAD_TO_SIGMA;
  // A floor on the spread: a perfectly steady history must not make any change an anomaly.
  const spread = Math.max(Number.isFinite(sigma) ? sigma : 0, Math.abs(expected) * 0.02, 1e-9);
  return { expected, low: expected - o.sensitivity * spread, high: expected + o.sensitivity * spread, basis: { runs: seasonal ? sameDay.length : recent.length, seasonal } };
}

const round = (value: number) => Number(value.toPrecision(6));

/** The anomalies of a run against the runs before it (oldest first). */
export function detectAnomalies(history: readonly RunMeasures[], run: RunMeasures, options: AnomalyOptions = {}): Anomaly[] {
  const o = { ...DEFAULTS, ...options };
  const found: Anomaly[] = [];
  const judge = (measure: string, read: (measures: RunMeasures) => number | null | undefined) => {
    const value = read(run);
    if (value === null || value === undefined) return;
    const points = history.flatMap((past) => {
      const v = read(past);
      return v === null || v === undefined ? [] : [{ at: past.at, value: v }];
    });
    const band = expectedBand(points, run.at, o);
    if (!band || (value >= band.low && value <= band.high)) return;
    const kind = value > band.high ? 'above' : 'below';
    found.push({
      measure,
      kind,
      severity: isError(measure, o.errors) ? 'error' : 'warning',
      value,
      band,
      message: `${measure} is ${round(value)}, ${kind} the expected ${round(Math.max(band.low, 0))} to ${round(band.high)} (${band.basis.runs} ${band.basis.seasonal ? 'same-weekday ' : ''}runs).`,
    });
  };
  judge('rows', (m) => m.rows);
  judge('increment', (m) => m.increment);
  judge('arrivalDelaySeconds', (m) => m.arrivalDelaySeconds);
  for (const column of Object.keys(run.columns)) {
    judge(`${column}.nullShare`, (m) => m.columns[column]?.nullShare);
    judge(`${column}.distinctCount`, (m) => m.columns[column]?.distinctCount);
    judge(`${column}.mean`, (m) => m.columns[column]?.mean);
    const frozen = frozenColumn(history, run, column, o);
    if (frozen) found.push(frozen);
  }
  return found;
}

/** A column whose mean has not moved for `frozenRuns` runs, when it moved in most runs before. */
function frozenColumn(history: readonly RunMeasures[], run: RunMeasures, column: string, o: typeof DEFAULTS): Anomaly | null {
  const means = [...history, run].map((m) => m.columns[column]?.mean).filter((v): v is number => typeof v === 'number');
  if (means.length < o.minimumHistory + o.frozenRuns) return null;
  const recent = means.slice(-o.frozenRuns);
  if (!recent.every((value) => value === recent[0])) return null;
  const before = means.slice(0, -o.frozenRuns);
  const moved = before.slice(1).filter((value, i) => value !== before[i]).length;
  if (moved < (before.length - 1) * 0.5) return null; // a column that rarely changes is not frozen when it does not
  return { measure: `${column}.mean`, kind: 'frozen', severity: isError(`${column}.mean`, o.errors) ? 'error' : 'warning', value: recent[0]!, band: null, message: `${column} has not changed in ${o.frozenRuns} runs (its mean stays ${round(recent[0]!)}); it changed in ${moved} of the ${before.length - 1} runs before.` };
}

/**
 * A run's measures from the profile its load made (rows, and each column's null share and distinct
 * count) and from when its source's newest record was (the arrival delay, when the product's SLA
 * names a time column).
 */
export function runMeasuresOf(profile: ProductProfile, loadedAt: string, newestRecordAt: string | null): RunMeasures {
  const newest = newestRecordAt ? Date.parse(newestRecordAt) : Number.NaN;
  return {
    at: loadedAt,
    rows: profile.rows,
    ...(Number.isFinite(newest) ? { arrivalDelaySeconds: Math.max(0, Math.round((Date.parse(loadedAt) - newest) / 1000)) } : {}),
    columns: Object.fromEntries(profile.columns.map((column) => [column.column, { nullShare: column.nullShare, distinctCount: column.distinctCount, ...(column.mean !== null && column.mean !== undefined ? { mean: column.mean } : {}) }])),
  };
}

/** What each measure says of the data, as a quality dimension. */
const dimensionOf = (measure: string): QualityDimension => (measure === 'arrivalDelaySeconds' ? 'timeliness' : measure === 'rows' || measure === 'increment' || measure.endsWith('.nullShare') ? 'completeness' : 'accuracy');

/**
 * An anomaly as a result of the run's quality checks (an error one rejects the load, as a failing
 * error check does): `anomaly_<measure>`, its value against the band.
 */
export function anomalyResult(product: string, anomaly: Anomaly): QualityResult {
  const round = (value: number) => Number(value.toPrecision(6));
  return {
    product,
    check: `anomaly_${anomaly.measure}`,
    dimension: dimensionOf(anomaly.measure),
    severity: anomaly.severity,
    outcome: 'fail',
    value: anomaly.value,
    threshold: anomaly.band ? `from ${round(Math.max(anomaly.band.low, 0))} to ${round(anomaly.band.high)} (expected ${round(anomaly.band.expected)}, from ${anomaly.band.basis.runs} ${anomaly.band.basis.seasonal ? 'same-weekday ' : ''}runs)` : 'changing, as it did before',
    unit: anomaly.measure === 'arrivalDelaySeconds' ? 'seconds' : anomaly.measure.endsWith('.nullShare') ? 'share' : anomaly.measure === 'rows' || anomaly.measure === 'increment' || anomaly.measure.endsWith('.distinctCount') ? 'rows' : 'value',
    failedRows: null,
    sampleKeys: [],
    sql: '',
  };
}
