import { createHmac } from 'node:crypto';
import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { decide, RequestPolicy } from './decide.js';
import { POLICY_DIRECTIVES_SDL } from './directives.js';
import { governanceRules } from './governance.rules.js';
import { createMasker, hashKeyFromEnv, maskMisfit, scopedHashKey, type MaskedType, type MaskStrategy } from './masking.js';
import { readPolicy } from './policy-index.js';
import { ANONYMOUS, type Principal } from './principal.js';

const KEY = 'k'.repeat(32);
const mask = (strategy: MaskStrategy, type: MaskedType, value: unknown, size?: number) =>
  createMasker({ strategy, type, hashKey: KEY, ...(size ? { size } : {}) })(value);
const t = (name: string, nonNull = false): MaskedType => ({ name, nonNull });

describe('mask strategies', () => {
  // strategy, type, value → masked
  const cases: [MaskStrategy, MaskedType, unknown, unknown, number?][] = [
    ['REDACT', t('String'), 'secret', null],
    ['REDACT', t('String', true), 'secret', '[REDACTED]'],
    ['REDACT', t('Int', true), 42, 0],
    ['REDACT', t('Float', true), 4.2, 0],
    ['REDACT', t('Boolean', true), true, false],
    ['REDACT', t('LocalDate', true), '1990-05-17', '1970-01-01'],
    ['REDACT', t('DateTime', true), '2024-01-02T03:04:05.000Z', '1970-01-01T00:00:00.000Z'],
    ['NULLIFY', t('String'), 'secret', null],
    ['NULLIFY', t('Int'), 7, null],
    ['DEFAULT', t('String', true), 'secret', ''],
    ['DEFAULT', t('Int', true), 7, 0],
    ['DEFAULT', t('Boolean'), true, false],
    ['DEFAULT', t('LocalDate'), '1990-05-17', '1970-01-01'],
    ['HASH', t('String'), 'ann@example.com', createHmac('sha256', KEY).update('ann@example.com').digest('hex')],
    ['HASH', t('ID', true), 'C0000001', createHmac('sha256', KEY).update('C0000001').digest('hex')],
    ['EMAIL', t('String'), 'ann.lee@example.com', 'xxxxx@example.com'],
    ['EMAIL', t('String'), 'no-at-sign', 'xxxxx'],
    ['FIRST4', t('String'), '+4930123456', '+493XXXXX'],
    ['LAST4', t('String'), '+4930123456', 'XXXXX3456'],
    ['LAST4', t('ID'), 'ab', 'XXXXXab'],
    ['DATE_YEAR', t('LocalDate'), '1990-05-17', '1990-01-01'],
    ['DATE_YEAR', t('DateTime', true), '2024-07-02T03:04:05.000Z', '2024-01-01T00:00:00.000Z'],
    ['ROUND', t('Float'), 1234.56, 1200, 100],
    ['ROUND', t('Int'), 1250, 1300, 100],
    ['ROUND', t('Float'), 12.345, 12.3, 0.1],
    ['BUCKET', t('Float'), 1299.99, 1000, 500],
    ['BUCKET', t('Int'), 37, 30, 10],
    ['BUCKET', t('Int'), -3, -10, 10],
  ];

  it.each(cases)('%s on %o: %o', (strategy, type, value, expected, size) => {
    expect(mask(strategy, type, value, size)).toEqual(expected);
  });

  it('keep the pseudonyms every earlier release gave: fixed test vectors (a change here breaks every pseudonym join)', () => {
    // Computed apart from this code, with openssl: the scoped key is HMAC-SHA256(MASK_HASH_KEY,
    // "field:<Type.field>" or "join-group:<name>") as hex text, the pseudonym HMAC-SHA256(that text, value) as hex.
    const vectors: [key: string, scope: { coordinate: string; joinGroup?: string }, value: string, pseudonym: string][] = [
      ['local-development-mask-key-do-not-use-in-production', { coordinate: 'Customer.name' }, 'Ada Lovelace', '0caedaa68139936d82be5d78aa0ca3ecd243078342645328f17713051d31e15d'],
      ['local-development-mask-key-do-not-use-in-production', { coordinate: 'Customer.email', joinGroup: 'person-email' }, 'ada@example.com', 'b465a381459324a3aac84dab7c95c5f3e5e55646b6ec09822ae0b9c7657b9a65'],
      ['a-production-key-of-at-least-32-characters!', { coordinate: 'Order.id' }, 'O0000042', 'bcc55fe5debf53d201b05f02eaeeeb0c187d0aecf1790d068b99d9a90d8281e8'],
    ];
    for (const [key, scope, value, pseudonym] of vectors) {
      expect(createMasker({ strategy: 'HASH', type: t('String'), hashKey: scopedHashKey(key, scope) })(value), `${scope.coordinate} ${value}`).toBe(pseudonym);
    }
    expect(scopedHashKey('local-development-mask-key-do-not-use-in-production', { coordinate: 'Customer.name' })).toBe('1baf94166f5ba40fdd3408090c8d2e10e24d603c89fa3de90d72fdb9a78d216b');
  });

  it('keep null as null, and HASH stable (countable, joinable) but keyed', () => {
    expect(mask('HASH', t('String'), null)).toBeNull();
    expect(mask('EMAIL', t('String'), undefined)).toBeUndefined();
    expect(mask('HASH', t('String'), 'x')).toBe(mask('HASH', t('String'), 'x'));
    expect(createMasker({ strategy: 'HASH', type: t('String'), hashKey: 'z'.repeat(32) })('x')).not.toBe(mask('HASH', t('String'), 'x'));
  });

  it('remember recent pseudonyms by key and value: never one field\'s pseudonym for another field, nor a number\'s for its text', () => {
    const customerName = scopedHashKey(KEY, { coordinate: 'Customer.name' });
    const supplierName = scopedHashKey(KEY, { coordinate: 'Supplier.name' });
    const hmac = (key: string, text: string) => createHmac('sha256', key).update(text).digest('hex');
    const byName = createMasker({ strategy: 'HASH', type: t('String'), hashKey: customerName });
    const bySupplier = createMasker({ strategy: 'HASH', type: t('String'), hashKey: supplierName });
    for (let round = 0; round < 3; round++) {
      // Remembered or not, each is the HMAC under its own key.
      expect(byName('Ann Lee')).toBe(hmac(customerName, 'Ann Lee'));
      expect(bySupplier('Ann Lee')).toBe(hmac(supplierName, 'Ann Lee'));
      expect(byName('Ann Lee\u0000x')).toBe(hmac(customerName, 'Ann Lee\u0000x'));
      expect(byName(42)).toBe(hmac(customerName, '42'));
    }
    // A key that runs on into another key's value cannot borrow its entry.
    expect(byName('Ann\u0000 Lee')).toBe(hmac(customerName, 'Ann\u0000 Lee'));
    expect(byName('Ann Lee')).toBe(hmac(customerName, 'Ann Lee'));
    for (const [key, text] of [[`${customerName}\u0000Ann`, ' Lee'], [`${customerName}Ann`, ' Lee'], [customerName.slice(0, -1), `${customerName.at(-1)}Ann Lee`]] as const) {
      expect(createMasker({ strategy: 'HASH', type: t('String'), hashKey: key })(text)).toBe(hmac(key, text));
    }
  });

  const misfits: [MaskStrategy, MaskedType, RegExp][] = [
    ['DATE_YEAR', t('Boolean'), /DATE_YEAR does not fit a Boolean field/],
    ['HASH', t('Int'), /HASH does not fit a Int field/],
    ['EMAIL', t('ID'), /EMAIL does not fit a ID field/],
    ['ROUND', t('String'), /ROUND does not fit a String field/],
    ['NULLIFY', t('String', true), /NULLIFY needs a nullable field/],
    ['REDACT', t('Address'), /masks apply to scalar and enum fields, and Address is not one/],
    ['HASH', { name: 'Kind', nonNull: false, enumValues: ['A', 'B'] }, /HASH does not fit an enum \(Kind\); use REDACT, NULLIFY or DEFAULT/],
    ['REDACT', { name: 'Kind', nonNull: true, enumValues: ['A', 'B'] }, /a non-null enum \(Kind!\) has no value to redact to; make the field nullable/],
  ];

  it('mask a nullable enum to null, or by DEFAULT to its first value', () => {
    const kind: MaskedType = { name: 'Kind', nonNull: false, enumValues: ['BILLING', 'SHIPPING'] };
    expect(maskMisfit('REDACT', kind)).toBeNull();
    expect(mask('REDACT', kind, 'SHIPPING')).toBeNull();
    expect(mask('NULLIFY', kind, 'SHIPPING')).toBeNull();
    expect(mask('DEFAULT', { ...kind, nonNull: true }, 'SHIPPING')).toBe('BILLING');
  });

  it('refuse a pii enum that no mask fits, and mask a nullable one by default', () => {
    const index = policyOf(`
      enum Kind { BILLING SHIPPING }
      type Address @classify(level: "CONFIDENTIAL", tags: ["pii"]) { required: Kind! optional: Kind }
    `);
    expect(index.violations.map((v) => v.message)).toEqual([
      'Address.required: the pii default mask cannot mask it: a non-null enum (Kind!) has no value to redact to; make the field nullable.',
    ]);
    expect(index.field('Address', 'optional').mask).toMatchObject({ strategy: 'REDACT', rule: 'pii default mask' });
  });

  it.each(misfits)('refuse %s on %o', (strategy, type, message) => {
    expect(maskMisfit(strategy, type)).toMatch(message);
  });

  it('need a real HASH key in production', () => {
    expect(() => hashKeyFromEnv({ NODE_ENV: 'production' })).toThrow(/MASK_HASH_KEY must be set/);
    expect(() => hashKeyFromEnv({ MASK_HASH_KEY: 'short' })).toThrow(/at least 32/);
    expect(hashKeyFromEnv({ MASK_HASH_KEY: KEY })).toBe(KEY);
  });
});

function principal(overrides: Partial<Principal>): Principal {
  return { ...ANONYMOUS, anonymous: false, subject: 'p', ...overrides };
}

function policyOf(sdl: string) {
  return readPolicy(parse(`${POLICY_DIRECTIVES_SDL}\n${sdl}`), governanceRules);
}

describe('masks in the policy', () => {
  const index = policyOf(`
    type Customer @classify(level: "CONFIDENTIAL") {
      email: String @classify(level: "CONFIDENTIAL", tags: ["pii"])
      born: String @classify(level: "CONFIDENTIAL", tags: ["pii"]) @mask(strategy: "REDACT", exemptRoles: ["steward"])
      score: Float @mask(strategy: "BUCKET", size: 10, exemptPurposes: ["fraud-prevention"])
      spend: Float @mask(strategy: "ROUND", size: 100, shadow: true)
      flag: Boolean! @classify(level: "CONFIDENTIAL", tags: ["pii"])
      addresses: [Address!] @classify(level: "CONFIDENTIAL", tags: ["pii"])
    }
    type Address @classify(level: "CONFIDENTIAL") { city: String }
  `);
  const analyst = principal({ roles: ['analyst'] });
  const support = principal({ roles: ['support'] });
  const fraud = principal({ roles: ['analyst'], purpose: 'fraud-prevention' });

  it('comply with the rules', () => {
    expect(index.violations).toEqual([]);
  });

  it('mask pii by the governance default (keyed hash), except for its exempt roles', () => {
    const forAnalyst = decide(analyst, index.field('Customer', 'email'));
    expect(forAnalyst).toMatchObject({ allowed: true, mask: { strategy: 'HASH', rule: 'pii default mask' } });
    expect(decide(support, index.field('Customer', 'email'))).toMatchObject({ allowed: true, mask: null });
  });

  it('let a domain tighten a default mask, and exempt by role or by purpose', () => {
    expect(decide(support, index.field('Customer', 'born'))).toMatchObject({ mask: { strategy: 'REDACT', rule: '@mask on Customer.born' } });
    expect(decide(principal({ roles: ['steward'] }), index.field('Customer', 'born'))).toMatchObject({ mask: null });
    expect(decide(analyst, index.field('Customer', 'score'))).toMatchObject({ mask: { strategy: 'BUCKET', size: 10 } });
    expect(decide(fraud, index.field('Customer', 'score'))).toMatchObject({ mask: null });
  });

  it('fall back to REDACT where a default does not fit, and never mask object fields', () => {
    expect(index.field('Customer', 'flag').mask).toMatchObject({ strategy: 'REDACT' });
    expect(index.field('Customer', 'addresses').mask).toBeNull();
  });

  it('evaluate a shadow mask without applying it', () => {
    const decision = decide(analyst, index.field('Customer', 'spend'));
    expect(decision).toMatchObject({ allowed: true, mask: null, shadow: { wouldMask: { strategy: 'ROUND', size: 100 } } });
    const policy = new RequestPolicy(index, analyst, KEY);
    expect(policy.masker('Customer', 'spend')).toBeNull();
    expect(policy.masker('Customer', 'score')!(37)).toBe(30);
  });

  it('hash each field with a key of its own, unless fields share a join group on purpose', () => {
    const joined = policyOf(`
      type Person @classify(level: "CONFIDENTIAL") {
        country: String @classify(level: "CONFIDENTIAL", tags: ["pii"])
        homeCountry: String @classify(level: "CONFIDENTIAL", tags: ["pii"])
        email: String @classify(level: "CONFIDENTIAL", tags: ["pii"]) @mask(strategy: "HASH", joinGroup: "person-email")
      }
      type Contact @classify(level: "CONFIDENTIAL") {
        email: String @classify(level: "CONFIDENTIAL", tags: ["pii"]) @mask(strategy: "HASH", joinGroup: "person-email")
      }
    `);
    expect(joined.violations).toEqual([]);
    const policy = new RequestPolicy(joined, analyst, KEY);
    // The same raw value in two fields: two unrelated hashes, and neither is the plain keyed HMAC.
    const country = policy.masker('Person', 'country')!('DE');
    const home = policy.masker('Person', 'homeCountry')!('DE');
    expect(country).not.toBe(home);
    expect(country).not.toBe(createHmac('sha256', KEY).update('DE').digest('hex'));
    expect(country).toBe(createHmac('sha256', scopedHashKey(KEY, { coordinate: 'Person.country' })).update('DE').digest('hex'));
    // Declared joinable: the same hash in both fields, and still not the field-scoped one.
    expect(policy.masker('Person', 'email')!('a@b.c')).toBe(policy.masker('Contact', 'email')!('a@b.c'));
    expect(policy.masker('Person', 'email')!('a@b.c')).not.toBe(createHmac('sha256', scopedHashKey(KEY, { coordinate: 'Person.email' })).update('a@b.c').digest('hex'));
  });

  it('refuse a join group on a mask that is not HASH, or with a malformed name', () => {
    const bad = policyOf(`
      type T @classify(level: "CONFIDENTIAL") {
        a: String @classify(level: "CONFIDENTIAL", tags: ["pii"]) @mask(strategy: "REDACT", joinGroup: "g")
        b: String @classify(level: "CONFIDENTIAL", tags: ["pii"]) @mask(strategy: "HASH", joinGroup: "Bad Name")
      }
    `);
    expect(bad.violations.map((v) => v.message)).toEqual(['T.a: @mask(joinGroup:) applies to HASH only.', 'T.b: @mask(joinGroup:) must be lower-case letters, digits and -.']);
  });

  it('evaluate a shadow access rule without enforcing it', () => {
    const shadowIndex = policyOf('type T @classify(level: "INTERNAL") { f: String @requireRoles(anyOf: ["finance"], shadow: true) }');
    expect(shadowIndex.violations).toEqual([]);
    expect(decide(principal({ roles: ['viewer'] }), shadowIndex.field('T', 'f'))).toMatchObject({
      allowed: true,
      shadow: { wouldDeny: { roles: ['finance'] } },
    });
  });

  const refused: [string, string, RegExp][] = [
    ['a misfit', 'type T { f: Boolean @classify(level: "INTERNAL") @mask(strategy: "DATE_YEAR") }', /T\.f: @mask\(strategy: DATE_YEAR\) cannot mask it: DATE_YEAR does not fit a Boolean field/],
    ['an unknown strategy', 'type T { f: String @classify(level: "INTERNAL") @mask(strategy: "SCRAMBLE") }', /T\.f: unknown mask strategy "SCRAMBLE"/],
    ['a weaker mask than the default', 'type T { f: String @classify(level: "CONFIDENTIAL", tags: ["pii"]) @mask(strategy: "EMAIL", exemptRoles: ["steward"]) }', /T\.f: @mask\(strategy: EMAIL\) loosens the global pii default mask \(EMAIL hides less than HASH\)/],
    ['more exemptions than the default', 'type T { f: String @classify(level: "CONFIDENTIAL", tags: ["pii"]) @mask(strategy: "HASH", exemptRoles: ["analyst"]) }', /exempts the roles analyst, which the default does not/],
  ];

  it.each(refused)('refuse %s, naming the field and the rule', (_what, sdl, message) => {
    expect(policyOf(sdl).violations.map((v) => v.message).join('\n')).toMatch(message);
  });
});

describe('level default masks', () => {
  const rules = { ...governanceRules, levelMasks: { CONFIDENTIAL: { strategy: 'REDACT' as const, exemptRoles: ['finance'] } } };
  const index = readPolicy(
    parse(`${POLICY_DIRECTIVES_SDL}
      type Account @classify(level: "CONFIDENTIAL") {
        balance: Float
        holder: String @classify(level: "CONFIDENTIAL", tags: ["pii"])
        tier: String @classify(level: "INTERNAL")
      }`),
    rules,
  );

  it('apply to every field of the level, the strongest default winning', () => {
    expect(index.violations).toEqual([]);
    expect(decide(principal({ roles: ['analyst'] }), index.field('Account', 'balance'))).toMatchObject({ mask: { strategy: 'REDACT', rule: 'CONFIDENTIAL default mask' } });
    expect(decide(principal({ roles: ['finance'] }), index.field('Account', 'balance'))).toMatchObject({ mask: null });
    // pii's HASH (2) is weaker than the level's REDACT (3): REDACT applies.
    expect(index.field('Account', 'holder').mask).toMatchObject({ strategy: 'REDACT', rule: 'CONFIDENTIAL default mask' });
    expect(index.field('Account', 'tier').mask).toBeNull();
  });

  it('may not be loosened by a domain', () => {
    const loosened = readPolicy(
      parse(`${POLICY_DIRECTIVES_SDL}
        type Account @classify(level: "CONFIDENTIAL") { balance: Float @mask(strategy: "ROUND", size: 100, exemptRoles: ["finance"]) }`),
      rules,
    );
    expect(loosened.violations.map((v) => v.message)).toEqual([
      'Account.balance: @mask(strategy: ROUND) loosens the global CONFIDENTIAL default mask (ROUND hides less than REDACT).',
    ]);
  });
});
