/**
 * What the registry checks of a subgraph's data product documents (ODPS document and ODCS contract
 * per product, as its `/catalog` serves them or `npm run catalog -- export` writes them):
 *
 * - the governance group's harmonization rules (policy/harmonization.rules.ts), naming the product
 *   and the rule; and that each product's address is `<subgraph>.<name>`;
 * - the contract against the serving version's, as a consumer relies on it: a removed product or
 *   column, a column retyped or made optional, an SLA removed or loosened (a longer latency or
 *   update interval, a lower availability, a shorter retention) is breaking. A breaking change is
 *   refused unless the product's major version grows, which announces it (then it is a warning).
 */
import { isDeepStrictEqual } from 'node:util';
import { Kind, parse, type DocumentNode } from 'graphql';
import { checkHarmonization, type ProductFacts } from '../../policy/harmonization.rules.js';
import type { OdcsDocument, ProductDocument } from '../catalog/domain-entries.js';
import type { CheckCode } from './codes.js';

export interface ContractFinding {
  readonly code: Extract<CheckCode, 'HARMONIZATION_RULE_VIOLATION' | 'CONTRACT_BREAKING_CHANGE' | 'CONTRACT_BREAKING_CHANGE_ANNOUNCED' | 'CONTRACT_SAFE_CHANGE'>;
  /** The product, or `<product>.<column>` / `<product>.sla.<property>`. */
  readonly coordinate: string;
  readonly message: string;
}

function fieldsOfType(document: DocumentNode, typeName: string): string[] {
  return document.definitions.flatMap((definition) =>
    (definition.kind === Kind.OBJECT_TYPE_DEFINITION || definition.kind === Kind.OBJECT_TYPE_EXTENSION) && definition.name.value === typeName
      ? (definition.fields ?? []).map((field) => field.name.value)
      : [],
  );
}

/** The harmonization rules over a subgraph's documents, and its products' addresses. */
export function harmonizationFindings(subgraph: string, sdl: string, products: readonly ProductDocument[]): ContractFinding[] {
  const findings: ContractFinding[] = [];
  let document: DocumentNode;
  try {
    document = parse(sdl);
  } catch {
    return findings; // the SDL check reports it
  }
  const facts: ProductFacts[] = [];
  for (const product of products) {
    const { odps, odcs } = product;
    const prefix = `${subgraph}.`;
    if (!product.id.startsWith(prefix) || odps?.id !== product.id || odps.domain !== subgraph) {
      findings.push({
        code: 'HARMONIZATION_RULE_VIOLATION',
        coordinate: String(product.id),
        message: `[address] ${String(product.id)}: a product of the ${subgraph} subgraph is addressed "${subgraph}.<name>", with domain "${subgraph}" in its ODPS document.`,
      });
      continue;
    }
    const typeName = odcs?.schema?.[0]?.name;
    facts.push({
      domain: subgraph,
      name: product.id.slice(prefix.length),
      fields: typeName ? fieldsOfType(document, typeName) : [],
      metadata: {
        title: odps.name ?? '',
        version: odps.version ?? '',
        status: odps.status ?? '',
        description: { purpose: odps.description?.purpose ?? '' },
        owners: odps.team?.members ?? [],
        inputPorts: odps.inputPorts ?? [],
        sla: (odcs?.slaProperties ?? []).map((sla) => ({ property: sla.property, ...(sla.element ? { element: sla.element } : {}) })),
      },
    });
  }
  for (const violation of checkHarmonization(facts)) {
    findings.push({ code: 'HARMONIZATION_RULE_VIOLATION', coordinate: violation.product, message: `[${violation.rule}] ${violation.message}` });
  }
  return findings;
}

/** Seconds in a duration unit, as ODCS SLA properties write them. */
const SECONDS: Record<string, number> = { ms: 0.001, s: 1, sec: 1, m: 60, min: 60, h: 3600, d: 86_400, w: 604_800, mo: 2_592_000, y: 31_536_000 };

/** How a value of an SLA property compares, on one scale where a larger number is a looser promise. */
function looseness(sla: OdcsDocument['slaProperties'][number]): number | null {
  const value = Number(sla.value);
  if (!Number.isFinite(value)) return null;
  switch (sla.property) {
    case 'latency':
    case 'frequency': {
      // Longer is looser.
      const seconds = SECONDS[(sla.unit ?? '').toLowerCase()];
      return seconds === undefined ? null : value * seconds;
    }
    case 'retention': {
      const seconds = SECONDS[(sla.unit ?? '').toLowerCase()];
      return seconds === undefined ? null : -value * seconds; // shorter is looser
    }
    case 'availability':
      return -value; // lower is looser
    default:
      return null;
  }
}

const major = (version: string | undefined) => Number(/^(\d+)\./.exec(version ?? '')?.[1] ?? Number.NaN);

/** The changes of each product's contract from the serving version's documents to the proposed ones. */
export function contractChanges(before: readonly ProductDocument[], after: readonly ProductDocument[]): ContractFinding[] {
  const findings: ContractFinding[] = [];
  const proposed = new Map(after.map((product) => [product.id, product]));
  for (const old of before) {
    const next = proposed.get(old.id);
    if (!next) {
      findings.push({ code: 'CONTRACT_BREAKING_CHANGE', coordinate: old.id, message: `${old.id}: the data product is removed; its consumers lose it. Retire it first (status "retired"), then remove it.` });
      continue;
    }
    const breaking: { coordinate: string; message: string }[] = [];
    const safe: { coordinate: string; message: string }[] = [];
    const oldColumns = new Map((old.odcs.schema[0]?.properties ?? []).map((property) => [property.name, property]));
    const newColumns = new Map((next.odcs.schema[0]?.properties ?? []).map((property) => [property.name, property]));
    for (const [name, column] of oldColumns) {
      const coordinate = `${old.id}.${name}`;
      const now = newColumns.get(name);
      if (!now) breaking.push({ coordinate, message: `the column "${name}" is removed` });
      else {
        if (column.logicalType && now.logicalType && column.logicalType !== now.logicalType) breaking.push({ coordinate, message: `the column "${name}" changes type from ${column.logicalType} to ${now.logicalType}` });
        if (column.required === true && now.required === false) breaking.push({ coordinate, message: `the column "${name}" is no longer required (it may now be null)` });
      }
    }
    for (const name of newColumns.keys()) if (!oldColumns.has(name)) safe.push({ coordinate: `${old.id}.${name}`, message: `the column "${name}" is added` });
    const newSla = new Map(next.odcs.slaProperties.map((sla) => [sla.property, sla]));
    for (const sla of old.odcs.slaProperties) {
      const coordinate = `${old.id}.sla.${sla.property}`;
      const now = newSla.get(sla.property);
      const shown = (s: typeof sla) => `${s.value}${s.unit ? ` ${s.unit}` : ''}`;
      if (!now) {
        breaking.push({ coordinate, message: `the SLA property "${sla.property}" (${shown(sla)}) is no longer promised` });
        continue;
      }
      const [was, is] = [looseness(sla), looseness(now)];
      if (was !== null && is !== null && is > was) breaking.push({ coordinate, message: `the SLA property "${sla.property}" is loosened from ${shown(sla)} to ${shown(now)}` });
      else if (was !== null && is !== null && is < was) safe.push({ coordinate, message: `the SLA property "${sla.property}" is tightened from ${shown(sla)} to ${shown(now)}` });
    }
    const announced = major(next.odps.version) > major(old.odps.version);
    for (const change of breaking) {
      findings.push(
        announced
          ? { code: 'CONTRACT_BREAKING_CHANGE_ANNOUNCED', coordinate: change.coordinate, message: `${old.id}: ${change.message}; announced by the major version ${old.odps.version} → ${next.odps.version}.` }
          : { code: 'CONTRACT_BREAKING_CHANGE', coordinate: change.coordinate, message: `${old.id}: ${change.message}. Its consumers rely on the contract (version ${old.odps.version}): keep it, or raise the major version to announce the change.` },
      );
    }
    for (const change of safe) findings.push({ code: 'CONTRACT_SAFE_CHANGE', coordinate: change.coordinate, message: `${old.id}: ${change.message}.` });
  }
  return findings;
}

/**
 * Each contract against the SDL published with it: a column of a contract whose field the product's
 * type no longer has would be a promise the API does not keep (as when a new SDL is published
 * without new documents, and the serving version's are carried over).
 */
export function contractSchemaFindings(sdl: string, products: readonly ProductDocument[]): ContractFinding[] {
  let document: DocumentNode;
  try {
    document = parse(sdl);
  } catch {
    return [];
  }
  return products.flatMap((product) => {
    const schema = product.odcs?.schema?.[0];
    if (!schema) return [];
    const fields = new Set(fieldsOfType(document, schema.name));
    return (schema.properties ?? [])
      .filter((property) => !fields.has(property.name))
      .map((property): ContractFinding => ({
        code: 'CONTRACT_BREAKING_CHANGE',
        coordinate: `${product.id}.${property.name}`,
        message: `${product.id}: its contract promises the column "${property.name}", which the type ${schema.name} no longer serves. Publish documents that match the schema.`,
      }));
  });
}

/** Whether two versions' documents are the same (whatever the order of keys a store kept them in). */
/** The documents without their profiles: a new load's profile alone is no new version of the subgraph. */
const withoutProfiles = (documents: readonly ProductDocument[] | null | undefined) => documents?.map(({ profile: _profile, ...rest }) => rest) ?? null;

export const sameDocuments = (a: readonly ProductDocument[] | null | undefined, b: readonly ProductDocument[] | null | undefined): boolean =>
  isDeepStrictEqual(withoutProfiles(a), withoutProfiles(b));
