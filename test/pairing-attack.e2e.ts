/**
 * The pairing attack on masks (issue 12, finding 4), run over every field the supergraph masks for
 * an analyst: a masked value that always sits beside the same raw value of another field, in the
 * same answer, is decoded by that pairing. The test asks the mesh, as an analyst, for every field
 * it may read, reached from every list root (queries built from the served schema), and as support
 * of the same regions (the same rows, nothing masked) for the truth. For every masked field and
 * every other field of the same object, its ancestors and its descendants, it decodes each masked
 * value as the raw value it most often sits beside, and counts the decodings that are right. No
 * pairing may decode more values than guessing the field's most common raw value would.
 */
import { readFile } from 'node:fs/promises';
import {
  buildSchema,
  getNamedType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLSchema,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSupergraph } from '../gateway/supergraph/supergraph-source.js';
import { RequestPolicy } from '../policy/decide.js';
import { governanceRules } from '../policy/governance.rules.js';
import { DEV_HASH_KEY } from '../policy/masking.js';
import type { Principal } from '../policy/principal.js';
import { startTestMesh, tokenFor, type TestMesh } from './harness/mesh.js';

const REGIONS = ['EMEA'];
const analystClaims = { subject: 'pairing-analyst', roles: ['analyst'], regions: REGIONS, purpose: 'analytics' };
/** Support sees pii raw and is held to the same regions: the same rows, the truth. */
const supportClaims = { subject: 'pairing-support', roles: ['support'], regions: REGIONS };
const principalOf = (claims: { subject: string; roles: string[]; regions: string[]; purpose?: string }): Principal => ({
  anonymous: false,
  subject: claims.subject,
  issuer: null,
  roles: claims.roles,
  scopes: [],
  purpose: claims.purpose ?? null,
  client: null,
  attributes: { regions: claims.regions },
});

/** How deep the generated queries reach, in object levels below Query. */
const MAX_DEPTH = 6;
const ROOT_PAGE = 100;
const NESTED_PAGE = 3;

let mesh: TestMesh;
let api: GraphQLSchema;
let analystPolicy: RequestPolicy;
let supportPolicy: RequestPolicy;
/** Every coordinate the supergraph masks for the analyst (enforced masks, not shadow ones). */
let masked: Set<string>;

beforeAll(async () => {
  mesh = await startTestMesh();
  api = buildSchema(await readFile(mesh.apiSchemaPath, 'utf8'));
  const { policy } = loadSupergraph(await readFile(mesh.supergraphPath, 'utf8'), 'test', governanceRules);
  analystPolicy = new RequestPolicy(policy, principalOf(analystClaims), DEV_HASH_KEY);
  supportPolicy = new RequestPolicy(policy, principalOf(supportClaims), DEV_HASH_KEY);
  masked = new Set(
    [...policy.fields.keys()].filter((coordinate) => {
      const [typeName, fieldName] = coordinate.split('.') as [string, string];
      const decision = analystPolicy.field(typeName, fieldName);
      return decision.allowed && decision.mask !== null;
    }),
  );
});

afterAll(async () => {
  await mesh?.stop();
});

const requiredArgs = (field: GraphQLField<unknown, unknown>) => field.args.some((arg) => isNonNullType(arg.type) && arg.defaultValue === undefined);
const readable = (policy: RequestPolicy, type: GraphQLObjectType, field: string) => policy.field(type.name, field).allowed;

/** Page arguments: wide at the root (enough rows to pair), narrow below. */
function pageArgs(field: GraphQLField<unknown, unknown>, depth: number): string {
  const size = depth === 0 ? ROOT_PAGE : NESTED_PAGE;
  const names = new Set(field.args.map((arg) => arg.name));
  if (names.has('first')) return `(first: ${size})`;
  if (names.has('limit')) return `(limit: ${size})`;
  return '';
}

/**
 * Every field of `type` both principals may read, objects expanded down to MAX_DEPTH without
 * entering a type already on the path. A connection's `edges` repeat its `nodes` and are left out.
 */
function selectionOf(type: GraphQLObjectType, depth: number, path: readonly string[]): string {
  const fields = type.getFields();
  const parts: string[] = [];
  for (const field of Object.values(fields)) {
    if (requiredArgs(field) || !readable(analystPolicy, type, field.name) || !readable(supportPolicy, type, field.name)) continue;
    if (field.name === 'edges' && fields.nodes) continue;
    const named = getNamedType(field.type);
    if (isLeafType(named)) parts.push(field.name);
    else if (isObjectType(named) && depth < MAX_DEPTH && !path.includes(named.name)) {
      const inner = selectionOf(named, depth + 1, [...path, named.name]);
      if (inner) parts.push(`${field.name}${pageArgs(field, depth)} { ${inner} }`);
    }
  }
  return parts.join(' ');
}

/** One query per list root (a root field that needs no argument and returns a list or connection). */
function rootQueries(): { root: string; query: string }[] {
  const queryType = api.getQueryType()!;
  return Object.values(queryType.getFields())
    .filter((field) => !field.name.startsWith('_') && !requiredArgs(field) && readable(analystPolicy, queryType, field.name))
    .filter((field) => {
      const unwrapped = isNonNullType(field.type) ? field.type.ofType : field.type;
      return isListType(unwrapped) || field.args.some((arg) => arg.name === 'first');
    })
    .map((field) => {
      const named = getNamedType(field.type) as GraphQLObjectType;
      return { root: field.name, query: `{ ${field.name}${pageArgs(field, 0)} { ${selectionOf(named, 1, ['Query', named.name])} } }` };
    });
}

interface Leaf {
  readonly coordinate: string;
  /** The analyst's value (masked where the analyst gets a mask). */
  readonly seen: string;
  /** Support's value of the same field of the same row: the raw value. */
  readonly raw: string;
}

interface Node {
  readonly leaves: Leaf[];
  readonly children: Node[];
  readonly parent: Node | null;
}

/** Walks the analyst's and support's answers side by side (same query, same rows, same order). */
function walk(type: GraphQLObjectType, seen: Record<string, unknown>, raw: Record<string, unknown>, parent: Node | null, nodes: Node[]): Node {
  const node: Node = { leaves: [], children: [], parent };
  nodes.push(node);
  for (const [name, value] of Object.entries(seen)) {
    const field = type.getFields()[name]!;
    const named = getNamedType(field.type);
    const rawValue = raw[name];
    const seenItems = Array.isArray(value) ? value : [value];
    const rawItems = Array.isArray(rawValue) ? rawValue : [rawValue];
    expect(rawItems.length, `${type.name}.${name}: support's answer has the analyst's rows`).toBe(seenItems.length);
    seenItems.forEach((item, i) => {
      if (isObjectType(named)) {
        if (item != null && rawItems[i] != null) node.children.push(walk(named, item as Record<string, unknown>, rawItems[i] as Record<string, unknown>, node, nodes));
      } else {
        node.leaves.push({ coordinate: `${type.name}.${name}`, seen: JSON.stringify(item), raw: JSON.stringify(rawItems[i]) });
      }
    });
  }
  return node;
}

const ancestorsOf = (node: Node): Node[] => (node.parent ? [node.parent, ...ancestorsOf(node.parent)] : []);
const descendantsOf = (node: Node): Node[] => node.children.flatMap((child) => [child, ...descendantsOf(child)]);

interface Pairing {
  /** The masked value → the raw values of the other field it sat beside, counted. */
  readonly beside: Map<string, Map<string, number>>;
  /** Each occurrence of the masked field: its masked value and its raw value. */
  readonly occurrences: { seen: string; raw: string }[];
}

interface PairingResult {
  readonly masked: string;
  readonly beside: string;
  readonly occurrences: number;
  readonly decoded: number;
  /** Right guesses of one who always guesses the masked field's most common raw value. */
  readonly baseline: number;
}

/** The attack: each masked value decoded as the value it most often sits beside. */
function pairingAttack(nodes: readonly Node[]): PairingResult[] {
  const pairings = new Map<string, Pairing>();
  for (const node of nodes) {
    const related = [node, ...ancestorsOf(node), ...descendantsOf(node)];
    for (const leaf of node.leaves) {
      if (!masked.has(leaf.coordinate)) continue;
      const seenBeside = new Set<string>();
      for (const other of related) {
        for (const candidate of other.leaves) {
          if (candidate === leaf) continue;
          const key = `${leaf.coordinate} ← ${candidate.coordinate}`;
          let pairing = pairings.get(key);
          if (!pairing) pairings.set(key, (pairing = { beside: new Map(), occurrences: [] }));
          const counts = pairing.beside.get(leaf.seen) ?? new Map<string, number>();
          pairing.beside.set(leaf.seen, counts);
          counts.set(candidate.seen, (counts.get(candidate.seen) ?? 0) + 1);
          if (!seenBeside.has(key)) {
            seenBeside.add(key);
            pairing.occurrences.push({ seen: leaf.seen, raw: leaf.raw });
          }
        }
      }
    }
  }
  return [...pairings].map(([key, pairing]) => {
    const [maskedField, besideField] = key.split(' ← ') as [string, string];
    const decode = new Map([...pairing.beside].map(([seen, counts]) => [seen, [...counts].sort((a, b) => b[1] - a[1])[0]![0]]));
    const rawCounts = new Map<string, number>();
    for (const { raw } of pairing.occurrences) rawCounts.set(raw, (rawCounts.get(raw) ?? 0) + 1);
    return {
      masked: maskedField,
      beside: besideField,
      occurrences: pairing.occurrences.length,
      decoded: pairing.occurrences.filter(({ seen, raw }) => decode.get(seen) === raw).length,
      baseline: Math.max(...rawCounts.values()),
    };
  });
}

describe('the pairing attack on masks', () => {
  it("decodes no masked field of the supergraph from another field of the analyst's answer", async () => {
    expect(masked.size, 'the supergraph masks something for an analyst').toBeGreaterThan(3);
    const analyst = `Bearer ${tokenFor(analystClaims)}`;
    const support = `Bearer ${tokenFor(supportClaims)}`;
    const nodes: Node[] = [];
    const queries = rootQueries();
    expect(queries.map((q) => q.root)).toEqual(expect.arrayContaining(['customers', 'customerList', 'orders', 'products']));
    for (const { root, query } of queries) {
      const [seen, truth] = await Promise.all([mesh.query<any>(query, undefined, { authorization: analyst }), mesh.query<any>(query, undefined, { authorization: support })]);
      expect(seen.body.errors, `${root} as the analyst`).toBeUndefined();
      expect(truth.body.errors, `${root} as support`).toBeUndefined();
      walk(api.getQueryType()!, seen.body.data, truth.body.data, null, nodes);
    }

    // Every masked field was in an answer, masked, beside support's raw value.
    const answered = new Map<string, Leaf[]>();
    for (const node of nodes) for (const leaf of node.leaves) if (masked.has(leaf.coordinate)) answered.set(leaf.coordinate, [...(answered.get(leaf.coordinate) ?? []), leaf]);
    expect([...answered.keys()].sort(), 'every masked field of the supergraph was asked for').toEqual([...masked].sort());
    for (const [coordinate, leaves] of answered) {
      expect(leaves.length, `${coordinate} answered on enough rows to pair`).toBeGreaterThan(20);
      const [typeName, fieldName] = coordinate.split('.') as [string, string];
      const truth = supportPolicy.field(typeName, fieldName);
      expect(truth.allowed && truth.mask === null, `support reads ${coordinate} raw`).toBe(true);
      expect(leaves.some((leaf) => leaf.seen !== leaf.raw), `${coordinate} is masked in the analyst's answer`).toBe(true);
    }

    const leaks = pairingAttack(nodes).filter((result) => result.decoded > result.baseline);
    expect(leaks, 'pairings that decode masked values').toEqual([]);
  });

  it("decodes no address country from the customer's country (the finding's own query)", async () => {
    const query = '{ customers(first: 500) { nodes { country addresses { country } } } }';
    const { body } = await mesh.query<any>(query, undefined, { authorization: `Bearer ${tokenFor({ ...analystClaims, regions: ['EMEA', 'AMERICAS', 'APAC'] })}` });
    expect(body.errors).toBeUndefined();
    const pairs = body.data.customers.nodes.flatMap((customer: any) => (customer.addresses ?? []).map((address: any) => [address.country, customer.country]));
    expect(pairs.length).toBeGreaterThan(200);
    // Whatever an analyst sees of an address's country, it is never the country itself.
    expect(pairs.filter(([seen, country]: string[]) => seen === country)).toEqual([]);
    // And nothing an analyst sees of it tells two countries apart.
    const countries = new Set(pairs.map(([, country]: string[]) => country));
    expect(countries.size).toBeGreaterThan(2);
    expect(new Set(pairs.map(([seen]: string[]) => seen)).size).toBe(1);
  });
});
