/**
 * Reads the policy directives of a schema document (a subgraph's SDL or the supergraph's) into the
 * effective policy of every object field, checked against the governance rules.
 *
 * A field's level is its own `@classify`, else its type's, else the rules' `unclassified` level.
 * Its requirement is the level's global default; a domain's `@requireRoles`, `@requireScopes` or
 * `@requirePurpose` (on the field, else on its type) replaces that part only when it is at least as
 * strict. Anything that would loosen a global rule is a violation naming the field and the rule.
 */
import { Kind, valueFromASTUntyped, type ConstDirectiveNode, type DocumentNode } from 'graphql';
import { isLevel, levelRank, type GovernanceRules, type Level, type Requirement } from './rules.js';

export interface FieldPolicy {
  /** `Type.field` */
  readonly coordinate: string;
  readonly level: Level;
  readonly tags: readonly string[];
  readonly requirement: Requirement;
  /** Which rules decided, for explanations: e.g. `CONFIDENTIAL default; @requireRoles on Customer`. */
  readonly rule: string;
}

export interface RowPolicy {
  readonly column: string;
  readonly claim: string;
  readonly bypassRoles: readonly string[];
}

export interface PolicyViolation {
  readonly coordinate: string;
  readonly message: string;
}

export interface PolicyIndex {
  /** The policy of a field; federation machinery (`_service`, `_entities`) is open by design. */
  field(typeName: string, fieldName: string): FieldPolicy;
  /** The row policy of a type, if it has one. */
  rowPolicy(typeName: string): RowPolicy | null;
  /** Every field the document defines, by coordinate. */
  readonly fields: ReadonlyMap<string, FieldPolicy>;
  /** Where the document breaks the governance rules; empty when it complies. */
  readonly violations: readonly PolicyViolation[];
}

/** Fields that carry no data of their own: federation's machinery. */
const OPEN_FIELDS = new Set(['Query._service', 'Query._entities', '_Service.sdl']);

interface DomainRequirements {
  roles?: string[];
  scopes?: string[][];
  purposes?: string[];
  source: Partial<Record<'roles' | 'scopes' | 'purposes', string>>;
}

function argumentsOf(directive: ConstDirectiveNode): Record<string, unknown> {
  return Object.fromEntries((directive.arguments ?? []).map((arg) => [arg.name.value, valueFromASTUntyped(arg.value)]));
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : undefined;
}

interface Annotations {
  level?: unknown;
  tags: string[];
  requirements: DomainRequirements;
  row?: RowPolicy;
}

function readAnnotations(directives: readonly ConstDirectiveNode[] | undefined, where: string): Annotations {
  const found: Annotations = { tags: [], requirements: { source: {} } };
  for (const directive of directives ?? []) {
    const args = argumentsOf(directive);
    switch (directive.name.value) {
      case 'classify':
        found.level = args.level;
        found.tags = stringList(args.tags) ?? [];
        break;
      case 'requireRoles':
        found.requirements.roles = stringList(args.anyOf) ?? [];
        found.requirements.source.roles = `@requireRoles on ${where}`;
        break;
      case 'requireScopes':
        found.requirements.scopes = Array.isArray(args.anyOf) ? (args.anyOf as unknown[]).map((g) => stringList(g) ?? []) : [];
        found.requirements.source.scopes = `@requireScopes on ${where}`;
        break;
      case 'requirePurpose':
        found.requirements.purposes = stringList(args.anyOf) ?? [];
        found.requirements.source.purposes = `@requirePurpose on ${where}`;
        break;
      case 'rowPolicy':
        found.row = {
          column: String(args.column),
          claim: String(args.claim),
          bypassRoles: stringList(args.bypassRoles) ?? [],
        };
        break;
    }
  }
  return found;
}

function list(values: readonly string[]): string {
  return values.join(', ');
}

/** Combines the level's default with a domain's requirements, reporting any loosening. */
function effectiveRequirement(options: {
  coordinate: string;
  level: Level;
  base: Requirement;
  domain: DomainRequirements;
  violations: PolicyViolation[];
}): { requirement: Requirement; rule: string } {
  const { coordinate, level, base, domain, violations } = options;
  const loosens = (what: string, detail: string) =>
    violations.push({ coordinate, message: `${coordinate}: ${what} loosens the global ${level} rule (${detail}).` });
  const parts = [`${level} default`];

  // Roles and purposes: the domain's list must be a non-empty subset of the level's.
  const narrowed = (part: 'roles' | 'purposes', directive: string, label: string): readonly string[] | undefined => {
    const wanted = domain[part];
    const allowed = base[part];
    if (!wanted) return allowed;
    parts.push(domain.source[part]!);
    if (wanted.length === 0) {
      loosens(`${directive}(anyOf: [])`, `an empty list would allow no ${label}; remove the directive instead`);
      return allowed;
    }
    const extra = allowed ? wanted.filter((value) => !allowed.includes(value)) : [];
    if (extra.length > 0) {
      loosens(`${directive}(anyOf: [${list(wanted)}])`, `${label}s any of ${list(allowed!)}; ${list(extra)} is not among them`);
      return allowed;
    }
    return wanted;
  };
  const roles = narrowed('roles', '@requireRoles', 'role');
  const purposes = narrowed('purposes', '@requirePurpose', 'purpose');
  // Scopes: each of the domain's groups must include one of the level's groups.
  let scopes = base.scopes;
  if (domain.scopes) {
    const covered = (group: readonly string[]) => !base.scopes || base.scopes.some((b) => b.every((scope) => group.includes(scope)));
    if (domain.scopes.length === 0 || domain.scopes.some((group) => group.length === 0)) {
      loosens('@requireScopes with an empty group', 'an empty group would need no scope at all');
    } else if (!domain.scopes.every(covered)) {
      loosens('@requireScopes', `every group must include one of the groups ${base.scopes!.map((g) => `[${list(g)}]`).join(' or ')}`);
    } else scopes = domain.scopes;
    parts.push(domain.source.scopes!);
  }
  const requirement: Requirement = {
    authenticated: base.authenticated || Boolean(roles || scopes || purposes),
    ...(roles ? { roles } : {}),
    ...(scopes ? { scopes } : {}),
    ...(purposes ? { purposes } : {}),
  };
  return { requirement, rule: parts.join('; ') };
}

/** Reads every object type's fields and policies from a schema document. */
export function readPolicy(document: DocumentNode, rules: GovernanceRules): PolicyIndex {
  const fields = new Map<string, FieldPolicy>();
  const rows = new Map<string, RowPolicy>();
  const violations: PolicyViolation[] = [];

  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION && definition.kind !== Kind.OBJECT_TYPE_EXTENSION) continue;
    const typeName = definition.name.value;
    const onType = readAnnotations(definition.directives, typeName);
    if (onType.row) rows.set(typeName, onType.row);
    for (const field of definition.fields ?? []) {
      const coordinate = `${typeName}.${field.name.value}`;
      if (OPEN_FIELDS.has(coordinate)) continue;
      const onField = readAnnotations(field.directives, coordinate);
      const declared = onField.level ?? onType.level;
      let level: Level = rules.unclassified;
      if (declared !== undefined) {
        if (isLevel(declared)) level = declared;
        else violations.push({ coordinate, message: `${coordinate}: unknown classification level "${String(declared)}".` });
      }
      const tags = onField.level !== undefined ? onField.tags : [...onType.tags, ...onField.tags];
      for (const tag of tags) {
        const minimum = rules.tags[tag]?.minimumLevel;
        if (minimum && levelRank(level) < levelRank(minimum)) {
          violations.push({
            coordinate,
            message: `${coordinate}: tagged "${tag}" but classified ${level}, below the global minimum ${minimum} for "${tag}".`,
          });
        }
      }
      const domain: DomainRequirements = {
        ...onType.requirements,
        ...Object.fromEntries(Object.entries(onField.requirements).filter(([key]) => key !== 'source')),
        source: { ...onType.requirements.source, ...onField.requirements.source },
      };
      const { requirement, rule } = effectiveRequirement({ coordinate, level, base: rules.levels[level], domain, violations });
      fields.set(coordinate, { coordinate, level, tags, requirement, rule: declared === undefined ? `unclassified: ${rule}` : rule });
    }
  }

  const openPolicy = (coordinate: string): FieldPolicy => ({
    coordinate,
    level: 'PUBLIC',
    tags: [],
    requirement: { authenticated: false },
    rule: 'federation machinery',
  });
  return {
    fields,
    violations,
    field(typeName, fieldName) {
      const coordinate = `${typeName}.${fieldName}`;
      if (OPEN_FIELDS.has(coordinate)) return openPolicy(coordinate);
      return (
        fields.get(coordinate) ?? {
          coordinate,
          level: rules.unclassified,
          tags: [],
          requirement: rules.levels[rules.unclassified],
          rule: `unclassified: ${rules.unclassified} default`,
        }
      );
    },
    rowPolicy: (typeName) => rows.get(typeName) ?? null,
  };
}
