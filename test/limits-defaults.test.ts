/**
 * The default limits let through what users are shown: every operation in the README, the IDE's
 * example of each data product and the introspection queries of GraphiQL and codegen fit the shape
 * limits, and cost no more than a signed-in caller's budget.
 */
import { readFile } from 'node:fs/promises';
import { buildSchema, getIntrospectionQuery, getOperationAST, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../gateway/request-stages/allowances.js';
import { estimateCost, readCostIndex } from '../gateway/request-stages/cost.js';
import { exampleOperations } from '../gateway/ide/schema-docs.js';
import { measureDocument } from '../gateway/request-stages/operation-limits.js';
import { composeSupergraph } from '../gateway/supergraph/supergraph.js';
import { READMES } from '../policy/errors-doc.js';
import { domains } from '../subgraphs/domains.js';
import { printDomainSdl } from '../subgraphs/kit/domain-schema.js';

const composed = composeSupergraph(domains.map((domain) => ({ name: domain.name, url: `http://${domain.name}`, sdl: printDomainSdl(domain) })));
const schema = buildSchema(composed.apiSchemaSdl);
const index = readCostIndex(parse(composed.supergraphSdl));
const signedIn = { ...DEFAULT_LIMITS.anonymous, ...DEFAULT_LIMITS.authenticated };

/** The operations a README reader copies (in every README): `{ … }` blocks of graphql fences, and the curl bodies' queries. */
async function readmeOperations(): Promise<string[]> {
  const readme = (await Promise.all(READMES.map((path) => readFile(path, 'utf8')))).join('\n');
  const fenced = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]!.trim()).filter((text) => text.startsWith('{') || text.startsWith('query'));
  const curled = [...readme.matchAll(/-d '(\{"query":.*?\})'/g)].map((m) => (JSON.parse(m[1]!) as { query: string }).query);
  return [...fenced, ...curled];
}

describe('the default limits', () => {
  it.each([
    ['GraphiQL\'s introspection', getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true })],
    ['codegen\'s introspection', getIntrospectionQuery()],
    ...exampleOperations(schema, composed.supergraphSdl).map((example) => [`the IDE example of ${example.name}`, example.query] as [string, string]),
  ])('let %s through', (_name, query) => {
    const measured = measureDocument({ query, limits: signedIn, schema });
    expect(measured).toHaveProperty('document');
  });

  it('let every operation of the README through, within a signed-in budget', async () => {
    const operations = await readmeOperations();
    expect(operations.length).toBeGreaterThanOrEqual(3);
    for (const query of operations) {
      const measured = measureDocument({ query, limits: signedIn, schema });
      expect(measured, query).toHaveProperty('document');
      const document = (measured as { document: ReturnType<typeof parse> }).document;
      expect(estimateCost({ schema, index, document, operation: getOperationAST(document)!, variables: {} }), query).toBeLessThanOrEqual(signedIn.maxCost);
    }
  });
});
