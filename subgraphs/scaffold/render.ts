/**
 * The files of a scaffolded domain, from its proposal: `index.ts` (the domain, on the kit's public
 * API), `schema.graphql`, `package.json`, `domain.test.ts`, `source.json` (where its data came from,
 * and each renamed column) and `README.md` (what was proposed, what to fill in, what to run).
 */
import { KIT_VERSION } from '../kit/index.js';
import { placeholder } from '../../policy/placeholders.js';
import type { MaskDefault } from '../../policy/rules.js';
import type { Proposal, ProposedColumn } from './propose.js';

export interface DomainDraft {
  readonly domain: string;
  /** The product's name (and its table's). */
  readonly product: string;
  /** The GraphQL type of one row. */
  readonly typeName: string;
  readonly proposal: Proposal;
  /** The owner's contact (metadata `owners[0].username`); a placeholder when not given. */
  readonly owner: string | null;
  /** What the product is for; a placeholder when not given. */
  readonly purpose: string | null;
  /** What the source was (`source.json`). */
  readonly source: Record<string, string>;
  /** The pii tag's default mask under the governance rules (its exempt roles, for REDACT). */
  readonly piiMask: MaskDefault | undefined;
  /** The command that made it, for the README. */
  readonly command: string;
  readonly now: Date;
}

const TS_TYPE: Record<ProposedColumn['graphqlType'], string> = { ID: 'string', String: 'string', Int: 'number', Float: 'number', Boolean: 'boolean', LocalDate: 'string', DateTime: 'string' };

/** A TypeScript string literal. */
const ts = (text: string) => JSON.stringify(text);
/** A GraphQL block or line string. */
const gql = (text: string) => JSON.stringify(text);
const pascal = (name: string) => name.replace(/(^|_)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());

export const placeholdersOf = (draft: Pick<DomainDraft, 'owner' | 'purpose'>) => [...(draft.owner ? [] : ['owner']), ...(draft.purpose ? [] : ['purpose'])];

function ownerOf(draft: DomainDraft): string {
  return draft.owner ?? placeholder("the product owner's e-mail");
}

function purposeOf(draft: DomainDraft): string {
  return draft.purpose ?? placeholder(`what one ${draft.typeName} is, and what the product is for`);
}

function columnDeclaration(column: ProposedColumn): string {
  return column.nullable ? `{ type: ${ts(column.type)}, nullable: true }` : ts(column.type);
}

function qualityRules(draft: DomainDraft): string[] {
  const severity = draft.proposal.exact ? 'error' : 'warning';
  return [
    `{ name: 'not_empty', metric: 'rowCount', mustBeGreaterThan: 0, dimension: 'completeness', severity: 'error', description: 'A load brings rows.' }`,
    ...draft.proposal.columns
      .filter((column) => column.acceptedValues)
      .map(
        (column) =>
          `{ name: ${ts(`${column.column}_accepted_values`)}, metric: 'invalidValues', column: ${ts(column.column)}, validValues: ${JSON.stringify(column.acceptedValues)}, mustBe: 0, dimension: 'conformity', severity: '${severity}', description: ${ts(`${column.column} is one of the ${column.acceptedValues!.length} values the source held when the domain was made.`)} }`,
      ),
  ];
}

export function renderIndex(draft: DomainDraft): string {
  const { proposal, product, typeName } = draft;
  const table = `${product}Table`.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  const spec = `${table.replace(/Table$/, '')}Product`;
  const columns = proposal.columns;
  const lines = [
    '/**',
    ` * The ${draft.domain} domain, made by \`${draft.command}\` on ${draft.now.toISOString().slice(0, 10)}.`,
    ' * Its one data product serves the source as it is, on the kit\'s public API: change what you like,',
    ' * and run its test (`npm run domain -- test <this folder>`) before you publish.',
    ' */',
    `import { defineDataProduct, defineDomain, defineTable, type Connection, type DomainContext, type GraphQLResolverMap, type PageArgs, type RowOf, type WarehouseOf } from '@data-mesh/kit';`,
    '',
    `const ${table} = defineTable(${ts(product)}, {`,
    `  primaryKey: [${ts(proposal.key.column)}],`,
    '  columns: {',
    ...columns.map((column) => `    ${column.column}: ${columnDeclaration(column)},`),
    '  },',
    '});',
    `const tables = [${table}] as const;`,
    '',
    `export interface ${typeName} {`,
    ...columns.map((column) => `  readonly ${column.field}: ${TS_TYPE[column.graphqlType]}${column.nullable ? ' | null' : ''};`),
    '}',
    '',
    `const ${spec} = defineDataProduct<RowOf<typeof ${table}>, ${typeName}, Record<never, never>, 'KEY'>({`,
    `  name: ${ts(product)},`,
    '  metadata: {',
    `    title: ${ts(pascal(product).replace(/([a-z])([A-Z])/g, '$1 $2'))},`,
    `    version: '0.1.0',`,
    `    status: ${ts(placeholdersOf(draft).length === 0 ? 'active' : 'draft')},`,
    `    description: { purpose: ${ts(purposeOf(draft))}, usage: ${ts(`Query \`${product}\` through the supergraph, a page at a time.`)} },`,
    `    tags: [${ts(draft.domain)}],`,
    `    owners: [{ username: ${ts(ownerOf(draft))}, name: ${ts(`The ${draft.domain} domain team`)}, role: 'owner' }],`,
    `    inputPorts: [{ name: ${ts(`${draft.domain}.${draft.source.format}`)}, version: '1.0.0', contractId: ${ts(`${draft.domain}.${product}.source`)}, description: ${ts(`Landed from ${sourceText(draft.source)}`)} }],`,
    '    sla: [',
    "      { property: 'frequency', value: 1, unit: 'd' },",
    "      { property: 'availability', value: 99, unit: '%' },",
    '    ],',
    '  },',
    `  type: ${ts(typeName)},`,
    `  table: ${ts(product)},`,
    '  // The key is checked not null and unique at every load without being listed here.',
    '  quality: [',
    ...qualityRules(draft).map((rule) => `    ${rule},`),
    '  ],',
    `  key: ${ts(proposal.key.column)},`,
    `  columns: { ${columns.map((column) => `${column.field}: ${ts(column.column)}`).join(', ')} },`,
    `  toNode: (row) => ({ ${columns.map((column) => `${column.field}: row.${column.column}`).join(', ')} }),`,
    `  orderings: { KEY: [{ column: ${ts(proposal.key.column)}, field: ${ts(`${typeName}.${proposal.key.field}`)} }] },`,
    `  defaultOrder: { field: 'KEY', direction: 'ASC' },`,
    '  filters: {},',
    '});',
    '',
    `interface ${pascal(draft.domain)}Repository {`,
    `  ${singular(draft)}(key: string): Promise<${typeName} | null>;`,
    `  ${plural(draft)}(args: PageArgs): Promise<Connection<${typeName}>>;`,
    '}',
    '',
    `type Context = DomainContext<${pascal(draft.domain)}Repository>;`,
    '',
    'const resolvers: GraphQLResolverMap<Context> = {',
    '  Query: {',
    `    ${singular(draft)}: (_: unknown, { ${proposal.key.field} }: { ${proposal.key.field}: string }, { repo }: Context) => repo.${singular(draft)}(${proposal.key.field}),`,
    `    ${plural(draft)}: (_: unknown, args: PageArgs, { repo }: Context) => repo.${plural(draft)}(args),`,
    '  },',
    `  ${typeName}: {`,
    `    __resolveReference: ({ ${proposal.key.field} }: { ${proposal.key.field}: string }, { repo }: Context) => repo.${singular(draft)}(${proposal.key.field}),`,
    '  },',
    '};',
    '',
    `export const ${exportNameOf(draft.domain)} = defineDomain<WarehouseOf<typeof tables>, ${pascal(draft.domain)}Repository>({`,
    `  name: ${ts(draft.domain)},`,
    '  folder: import.meta.url,',
    '  resolvers,',
    '  // Bump when the tables change: the warehouse is then built again.',
    '  warehouseVersion: 1,',
    '  tables,',
    `  dataProducts: [${spec}],`,
    '  createRepository: (db, loaders, access, dialect) => {',
    `    const reader = ${spec}.reader(db, loaders, access, dialect);`,
    `    return { ${singular(draft)}: (key) => reader.byKey(key), ${plural(draft)}: (args) => reader.connection(args) };`,
    '  },',
    '});',
    '',
  ];
  return lines.join('\n');
}

/** Words JavaScript reserves: a domain named so is exported as `<name>Domain`. */
const RESERVED_WORDS = new Set('await break case catch class const continue debugger default delete do else enum export extends false finally for function if implements import in instanceof interface let new null package private protected public return static super switch this throw true try typeof var void while with yield'.split(' '));

/** The name `index.ts` exports the domain under: the domain's, lowerCamelCase. */
export function exportNameOf(domain: string): string {
  const name = domain.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return RESERVED_WORDS.has(name) ? `${name}Domain` : name;
}

/** The Query field of one row: the type's name, lowerCamelCase. */
export const singular = (draft: Pick<DomainDraft, 'typeName'>) => draft.typeName[0]!.toLowerCase() + draft.typeName.slice(1);
/** The Query field of the pages: the product's name, lowerCamelCase (`Of` added when it is the singular's). */
export function plural(draft: Pick<DomainDraft, 'typeName' | 'product'>): string {
  const name = draft.product.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return name === singular(draft) ? `${name}List` : name;
}

function sourceText(source: Record<string, string>): string {
  if (source.format === 'postgres') return `PostgreSQL ${source.connection} (${source.table ? `table ${source.table}` : 'a query'})`;
  return `${source.format} file ${source.file}`;
}

export function renderSchema(draft: DomainDraft): string {
  const { proposal, typeName, product } = draft;
  const exempt = draft.piiMask?.exemptRoles ?? ['steward', 'admin'];
  const field = (column: ProposedColumn) => {
    const description = column.renamed ? `From the source's column \`${column.source}\` (renamed ${column.column}).` : `From the source's column \`${column.source}\`.`;
    const type = `${column.graphqlType}${column.nullable ? '' : '!'}`;
    const directives = column.pii
      ? ` @classify(level: "CONFIDENTIAL", tags: ["pii"])${column.redact ? ` @mask(strategy: "REDACT", exemptRoles: [${exempt.map((role) => gql(role)).join(', ')}])` : ''}`
      : '';
    const why = column.pii ? ` Personal data: ${column.pii.reason}${column.redact ? '; too few distinct values to hash, so redacted' : ''}.` : '';
    return [`  ${gql(description + why)}`, `  ${column.field}: ${type}${directives}`];
  };
  const rowPolicy = proposal.rowPolicy ? `\n  @rowPolicy(column: ${gql(proposal.rowPolicy.column)}, claim: "regions", bypassRoles: ["steward", "admin"])` : '';
  const purpose = purposeOf(draft);
  return [
    `# The ${draft.domain} domain's subgraph, made from its source by \`npm run domain -- new\`: one data`,
    '# product, its personal data classified and masked as the profile proposed. Review every line.',
    '',
    'type Query {',
    `  "One ${typeName} by its key; null when there is none."`,
    `  ${singular(draft)}(${proposal.key.field}: ID!): ${typeName} @classify(level: "INTERNAL")`,
    `  "${pascal(product)}, by key; \`first\` defaults to 20 and may be 0 to 500."`,
    `  ${plural(draft)}(first: Int, after: String): ${typeName}Connection @listSize(assumedSize: 20, slicingArguments: ["first"], sizedFields: ["edges", "nodes"], requireOneSlicingArgument: false) @classify(level: "INTERNAL")`,
    '}',
    '',
    gql(`${purpose} Data product \`${product}\`, owned by the ${draft.domain} domain.`),
    `type ${typeName} @key(fields: ${gql(proposal.key.field)}) @dataProduct(name: ${gql(product)}, owner: ${gql(draft.domain)}) @classify(level: "INTERNAL")${rowPolicy} {`,
    ...proposal.columns.flatMap(field),
    '}',
    '',
    `type ${typeName}Connection @classify(level: "INTERNAL") {`,
    `  edges: [${typeName}Edge!]!`,
    `  nodes: [${typeName}!]!`,
    '  pageInfo: PageInfo!',
    '  totalCount: Int!',
    '}',
    '',
    `type ${typeName}Edge @classify(level: "INTERNAL") {`,
    '  cursor: String!',
    `  node: ${typeName}!`,
    '}',
    '',
  ].join('\n');
}

export function renderPackage(draft: DomainDraft): string {
  const [major, minor] = KIT_VERSION.split('.');
  return `${JSON.stringify(
    {
      name: `${draft.domain.replace(/_/g, '-')}-domain`,
      version: '0.1.0',
      private: true,
      type: 'module',
      description: `The ${draft.domain} domain of the data mesh.`,
      peerDependencies: { '@data-mesh/kit': `^${major}.${minor}.0` },
    },
    null,
    2,
  )}\n`;
}

export function renderTest(draft: DomainDraft): string {
  const { proposal } = draft;
  const pii = proposal.columns.find((column) => column.pii && !column.nullable) ?? proposal.columns.find((column) => column.pii);
  const exportName = exportNameOf(draft.domain);
  const selection = `${proposal.key.field}${pii ? ` ${pii.field}` : ''}`;
  const lines = [
    '/**',
    ` * The ${draft.domain} domain's own test: it loads the raw data through the quality gate, starts the`,
    ' * subgraph under the policy layer and queries it. Run it with `npm run domain -- test <this folder>`.',
    ' */',
    "import { afterAll, beforeAll, describe, expect, it } from 'vitest';",
    "import { startDomainForTest, type DomainUnderTest } from '@data-mesh/kit/testing';",
    `import { ${exportName} } from './index.ts';`,
    '',
    `describe('the ${draft.domain} domain', () => {`,
    '  let domain: DomainUnderTest;',
    `  beforeAll(async () => {`,
    `    domain = await startDomainForTest(${exportName}, { data: new URL('./data/', import.meta.url) });`,
    '  }, 120_000);',
    '  afterAll(() => domain?.stop());',
    '',
    "  it('loads its raw data through the quality gate', () => {",
    `    expect(domain.load.rows[${ts(draft.product)}]).toBeGreaterThan(0);`,
    '  });',
    '',
    `  it('serves its product, a page at a time, in key order', async () => {`,
    // Every field: each of its types is served as its scalar says.
    `    const answer = await domain.query<any>('{ ${plural(draft)}(first: 3) { totalCount nodes { ${proposal.columns.map((column) => column.field).join(' ')} } pageInfo { hasNextPage } } }');`,
    '    expect(answer.errors).toBeUndefined();',
    `    const page = answer.data.${plural(draft)};`,
    `    expect(page.totalCount).toBe(domain.load.rows[${ts(draft.product)}]);`,
    `    expect(page.nodes.length).toBe(Math.min(3, page.totalCount));`,
    `    const keys = page.nodes.map((node: any) => node.${proposal.key.field});`,
    '    expect([...keys].sort()).toEqual(keys);',
    `    const one = await domain.query<any>(\`{ ${singular(draft)}(${proposal.key.field}: \${JSON.stringify(keys[0])}) { ${proposal.key.field} } }\`);`,
    `    expect(one.data.${singular(draft)}).toEqual({ ${proposal.key.field}: keys[0] });`,
    '  });',
  ];
  if (pii) {
    lines.push(
      '',
      `  it('masks ${pii.field} (personal data) for an analyst, and a steward reads it', async () => {`,
      `    const query = '{ ${plural(draft)}(first: 3) { nodes { ${selection} } } }';`,
      '    const steward = await domain.query<any>(query);',
      `    const analyst = await domain.query<any>(query, { roles: ['analyst'] });`,
      '    expect(steward.errors).toBeUndefined();',
      '    expect(analyst.errors).toBeUndefined();',
      `    const read = (answer: any) => new Map(answer.data.${plural(draft)}.nodes.map((node: any) => [node.${proposal.key.field}, node.${pii.field}]));`,
      '    const masked = read(analyst);',
      '    expect(masked.size).toBeGreaterThan(0);',
      `    for (const [key, value] of read(steward)) if (masked.has(key) && value !== null) expect(masked.get(key)).not.toEqual(value);`,
      '  });',
    );
  }
  if (proposal.rowPolicy) {
    lines.push(
      '',
      `  it('shows an analyst only the rows of the regions their token names', async () => {`,
      `    const query = '{ ${plural(draft)}(first: 500) { nodes { ${proposal.key.field} ${proposal.rowPolicy.field} } } }';`,
      `    const all = (await domain.query<any>(query)).data.${plural(draft)}.nodes;`,
      `    const region = all[0].${proposal.rowPolicy.field};`,
      `    const seen = (await domain.query<any>(query, { roles: ['analyst'], regions: [region] })).data.${plural(draft)}.nodes;`,
      '    expect(seen.length).toBeGreaterThan(0);',
      `    expect(seen.every((node: any) => node.${proposal.rowPolicy.field} === region)).toBe(true);`,
      `    expect(seen.length).toBe(all.filter((node: any) => node.${proposal.rowPolicy.field} === region).length);`,
      '  });',
    );
  }
  lines.push('});', '');
  return lines.join('\n');
}

export function renderReadme(draft: DomainDraft, files: { readonly raw: string; readonly manifest: string; readonly url: string }): string {
  const { proposal } = draft;
  const renamed = proposal.columns.filter((column) => column.renamed);
  const pii = proposal.columns.filter((column) => column.pii);
  const todo = placeholdersOf(draft);
  return [
    `# The ${draft.domain} domain`,
    '',
    `Made by \`${draft.command}\` on ${draft.now.toISOString().slice(0, 10)} from ${sourceText(draft.source)}:`,
    `one data product, \`${draft.domain}.${draft.product}\`, of type \`${draft.typeName}\`, keyed by \`${proposal.key.column}\`.`,
    proposal.exact
      ? `The profile read the whole source (${proposal.rowsProfiled} rows).`
      : `The profile read the first ${proposal.rowsProfiled} rows; every column but the key may be empty, and the accepted values are warnings. The first load checks every row.`,
    '',
    '| file | what |',
    '| --- | --- |',
    '| `index.ts` | the domain: its table, its data product (metadata, quality rules), its resolvers |',
    '| `schema.graphql` | its subgraph: types, key, classification, masks |',
    `| \`${files.raw}\` | its raw data, landed from the source as the loads read it |`,
    '| `source.json` | where the data came from, and each column\'s name in the source |',
    '| `domain.test.ts` | its test: load, serve, query, masks (`npm run domain -- test <this folder>`) |',
    `| \`${files.manifest}\` | a mesh manifest: the built-in domains and this one, at ${files.url} |`,
    '',
    '## What the profile proposed',
    '',
    ...(pii.length > 0
      ? ['Personal data (classified CONFIDENTIAL, tagged `pii`, masked by the governance rules\' default or redacted):', '', ...pii.map((column) => `- \`${column.field}\`: ${column.pii!.reason}${column.redact ? ' (redacted: too few values to hash)' : ''}`), '']
      : ['No column looks like personal data. Check: the detectors know e-mails, phones, cards, IBANs, national ids, birth dates and names.', '']),
    ...(proposal.rowPolicy ? [`Row policy: a principal sees the rows whose \`${proposal.rowPolicy.column}\` is one of their token's \`regions\`.`, ''] : []),
    ...(renamed.length > 0 ? ['Renamed columns (the source\'s names are not SQL and GraphQL names):', '', ...renamed.map((column) => `- \`${column.source}\` → column \`${column.column}\`, field \`${column.field}\``), ''] : []),
    ...(todo.length > 0
      ? ['## Before you publish', '', `The registry refuses this domain until you write what the source could not say (search for \`<fill in:\`): ${todo.map((what) => (what === 'owner' ? "the product owner's e-mail (`owners` in `index.ts`)" : "what the product is for (`purpose` in `index.ts`, and the type's description in `schema.graphql`)")).join('; ')}.`, '']
      : []),
    '## Run it',
    '',
    '```sh',
    `MESH_MANIFEST=${files.manifest} npm start       # from the mesh's checkout: the mesh with this domain`,
    'npm run domain -- test <this folder>     # its own test',
    '```',
    '',
  ].join('\n');
}
