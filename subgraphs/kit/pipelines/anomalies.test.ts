/**
 * Anomalies from a product's own history: 60 daily runs of a normal history (weekday volumes about
 * 2.5 times the weekend's, noise on every measure) raise nothing, day after day; a 50% volume drop,
 * a null spike, a frozen column and a late arrival injected into it are each reported with the
 * expected band; a short history judges nothing.
 */
import { describe, expect, it } from 'vitest';
import { anomalyResult, detectAnomalies, expectedBand, runMeasuresOf, type RunMeasures } from './anomalies.js';

/** A deterministic pseudo-random series (mulberry32), so that the history is the same every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Day `i` of a normal history: a run at 02:00 UTC, starting on Monday 2026-09-07. */
function normalDay(i: number, next: () => number): RunMeasures {
  const at = new Date(Date.UTC(2026, 8, 7 + i, 2)).toISOString();
  const weekend = [0, 6].includes(new Date(at).getUTCDay());
  const noise = (spread: number) => 1 + (next() - 0.5) * 2 * spread;
  const increment = Math.round((weekend ? 400 : 1_000) * noise(0.08));
  return {
    at,
    rows: 100_000 + i * 800,
    increment,
    arrivalDelaySeconds: Math.round(3_600 * noise(0.15)),
    columns: {
      email: { nullShare: 0.001 * noise(0.5), distinctCount: 100_000 + i * 800, mean: null },
      amount: { nullShare: 0, distinctCount: Math.round(5_000 * noise(0.05)), mean: 52.5 * noise(0.04) },
    },
  };
}

function history(days: number, seed = 7): RunMeasures[] {
  const next = random(seed);
  return Array.from({ length: days }, (_, i) => normalDay(i, next));
}

describe('anomalies from run history', () => {
  it('raises nothing over 60 days of normal runs, weekends included (ten histories)', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const runs = history(60, seed);
      const raised = runs.flatMap((run, i) => detectAnomalies(runs.slice(0, i), run).map((a) => `${run.at} ${a.message}`));
      expect({ seed, raised }).toEqual({ seed, raised: [] });
    }
    const runs = history(60);
    // The weekend band is the weekend's, not the week's.
    const sunday = runs.findLast((run) => new Date(run.at).getUTCDay() === 0)!;
    const band = expectedBand(runs.filter((run) => run.at < sunday.at).map((run) => ({ at: run.at, value: run.increment! })), sunday.at)!;
    expect(band.basis.seasonal).toBe(true);
    expect(band.high).toBeLessThan(600);
  });

  it('judges nothing on a history shorter than four weeks, and judges from then on', () => {
    const runs = history(28);
    expect(detectAnomalies(runs.slice(0, 27), { ...runs[27]!, increment: 1 })).toEqual([]);
    expect(detectAnomalies(runs, { ...normalDay(28, random(1)), increment: 1 }).map((a) => a.measure)).toEqual(['increment']);
  });

  it('reports a 50% volume drop, a null spike, a frozen column and a late arrival, each with its band', () => {
    const runs = history(61);
    const past = runs.slice(0, 60);
    const today = runs[60]!;
    const drop = detectAnomalies(past, { ...today, increment: Math.round(today.increment! / 2) });
    expect(drop).toHaveLength(1);
    expect(drop[0]).toMatchObject({ measure: 'increment', kind: 'below', band: { basis: { seasonal: true, runs: 8 } } });
    expect(drop[0]!.band!.low).toBeGreaterThan(today.increment! / 2);
    expect(drop[0]!.message).toMatch(/^increment is \d+, below the expected \d+(\.\d+)? to \d+(\.\d+)? \(8 same-weekday runs\)\.$/);

    const spike = detectAnomalies(past, { ...today, columns: { ...today.columns, email: { ...today.columns.email!, nullShare: 0.3 } } });
    expect(spike.map((a) => [a.measure, a.kind])).toEqual([['email.nullShare', 'above']]);
    expect(spike[0]!.band!.high).toBeLessThan(0.01);

    const late = detectAnomalies(past, { ...today, arrivalDelaySeconds: 10 * 3_600 });
    expect(late.map((a) => [a.measure, a.kind])).toEqual([['arrivalDelaySeconds', 'above']]);

    // The amount column stops changing: its last three runs carry yesterday's mean.
    const stuck = past[57]!.columns.amount!.mean!;
    const frozenPast = past.map((run, i) => (i >= 58 ? { ...run, columns: { ...run.columns, amount: { ...run.columns.amount!, mean: stuck } } } : run));
    const frozen = detectAnomalies(frozenPast, { ...today, columns: { ...today.columns, amount: { ...today.columns.amount!, mean: stuck } } });
    expect(frozen.map((a) => [a.measure, a.kind])).toEqual([['amount.mean', 'frozen']]);
    expect(frozen[0]!.message).toMatch(/^amount has not changed in 3 runs/);
    // Warnings, unless the product declares the measure's anomalies errors.
    expect([...drop, ...spike, ...late, ...frozen].map((a) => a.severity)).toEqual(['warning', 'warning', 'warning', 'warning']);
  });

  it("are errors where the product declares them so, by measure or for every column's", () => {
    const runs = history(61);
    const past = runs.slice(0, 60);
    const today = runs[60]!;
    const bad = { ...today, increment: Math.round(today.increment! / 2), arrivalDelaySeconds: 10 * 3_600, columns: { ...today.columns, email: { ...today.columns.email!, nullShare: 0.3 } } };
    const severities = (errors: readonly string[]) => Object.fromEntries(detectAnomalies(past, bad, { errors }).map((a) => [a.measure, a.severity]));
    expect(severities([])).toEqual({ increment: 'warning', arrivalDelaySeconds: 'warning', 'email.nullShare': 'warning' });
    expect(severities(['increment', '*.nullShare'])).toEqual({ increment: 'error', arrivalDelaySeconds: 'warning', 'email.nullShare': 'error' });
    expect(severities(['email.nullShare', 'amount.nullShare', '*.mean'])).toEqual({ increment: 'warning', arrivalDelaySeconds: 'warning', 'email.nullShare': 'error' });
    // As a quality result of the run: failing, with the band as its threshold; an error one blocks the load.
    const [drop] = detectAnomalies(past, bad, { errors: ['increment'] });
    expect(anomalyResult('shipping.parcels', drop!)).toEqual({
      product: 'shipping.parcels',
      check: 'anomaly_increment',
      dimension: 'completeness',
      severity: 'error',
      outcome: 'fail',
      value: bad.increment,
      threshold: expect.stringMatching(/^from \d+(\.\d+)? to \d+(\.\d+)? \(expected \d+(\.\d+)?, from 8 same-weekday runs\)$/),
      unit: 'rows',
      failedRows: null,
      sampleKeys: [],
      sql: '',
    });
  });
});

describe("a run's measures", () => {
  it('come from its load\'s profile and the newest record: rows, each column\'s null share and distinct count, the arrival delay', () => {
    const profile = {
      product: 'shipping.parcels',
      table: 'parcels',
      profiledAt: '2026-12-06T02:00:00.000Z',
      rows: 90,
      columns: [{ column: 'email', field: 'email', type: 'varchar', nullShare: 0.1, distinctCount: 81, min: null, max: null, minLength: 10, maxLength: 30, mean: null, withheld: true, sampled: 81, detections: [] }],
    };
    const weight = { column: 'weight_kg', field: 'weightKg', type: 'decimal(6, 2)', nullShare: 0, distinctCount: 40, min: '0.5', max: '30', minLength: null, maxLength: null, mean: 4.25, withheld: false, sampled: 0, detections: [] };
    expect(runMeasuresOf({ ...profile, columns: [...profile.columns, weight] }, '2026-12-06T02:00:00.000Z', '2026-12-05T23:00:00.000Z')).toEqual({
      at: '2026-12-06T02:00:00.000Z',
      rows: 90,
      arrivalDelaySeconds: 10_800,
      // A number column's mean (the frozen-column detector reads it); none for text.
      columns: { email: { nullShare: 0.1, distinctCount: 81 }, weight_kg: { nullShare: 0, distinctCount: 40, mean: 4.25 } },
    });
    expect(runMeasuresOf(profile, '2026-12-06T02:00:00.000Z', null)).not.toHaveProperty('arrivalDelaySeconds');
  });
});
