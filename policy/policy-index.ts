/**
 * Reads the policy directives of a schema document (a subgraph's SDL or the supergraph's) into the
 * effective policy of every object field, checked against the governance rules.
 *
 * A field's level is its own `@classify`, else its type's, else the rules' `unclassified` level.
 * Its requirement is the level's global default; a domain's `@requireRoles`, `@requireScopes` or
 * `@requirePurpose` (on the field, else on its type) replaces that part only when it is at least as
 * strict. Anything that would loosen a global rule is a violation naming the field and the rule.
 */
import { Kind, valueFromASTUntyped, type ConstDirectiveNode, type DocumentNode, type TypeNode } from 'graphql';
import { isMaskStrategy, MASKABLE_SCALARS, MASK_STRENGTH, maskMisfit, type MaskedType, type MaskStrategy } from './masking.js';
import { isLevel, levelRank, unclassifiedTreatment, type GovernanceRules, type Level, type MaskDefault, type Requirement } from './rules.js';

/** A mask in force for a field: its strategy and who is exempt. */
export interface MaskRule {
  readonly strategy: MaskStrategy;
  readonly size?: number;
  readonly exemptRoles: readonly string[];
  readonly exemptPurposes: readonly string[];
  /**
   * HASH only: the fields that hash with one key on purpose, so that their values can be joined.
   * Without it each field hashes with a key of its own (derived from its coordinate): equal values
   * in two fields hash differently, and one field's raw values cannot decode another's hashes.
   */
  readonly joinGroup?: string;
  /** Where it comes from: `pii default` or `@mask on Customer.email`. */
  readonly rule: string;
}

export interface FieldPolicy {
  /** `Type.field` */
  readonly coordinate: string;
  readonly level: Level;
  readonly tags: readonly string[];
  readonly requirement: Requirement;
  /** Which rules decided, for explanations: e.g. `CONFIDENTIAL default; @requireRoles on Customer`. */
  readonly rule: string;
  /** The field's value type (for masks). */
  readonly type: MaskedType;
  /** The mask applied to principals without an exemption, if any. */
  readonly mask: MaskRule | null;
  /** Rules in shadow: evaluated and audited as "would deny" / "would mask", not enforced. */
  readonly shadow: { readonly requirement: Partial<Requirement> | null; readonly mask: MaskRule | null };
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
  shadow: Partial<Record<'roles' | 'scopes' | 'purposes', boolean>>;
}

interface MaskAnnotation {
  strategy: unknown;
  size?: number;
  joinGroup?: unknown;
  exemptRoles: string[];
  exemptPurposes: string[];
  shadow: boolean;
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
  mask?: MaskAnnotation;
}

function readAnnotations(directives: readonly ConstDirectiveNode[] | undefined, where: string): Annotations {
  const found: Annotations = { tags: [], requirements: { source: {}, shadow: {} } };
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
        found.requirements.shadow.roles = args.shadow === true;
        break;
      case 'requireScopes':
        found.requirements.scopes = Array.isArray(args.anyOf) ? (args.anyOf as unknown[]).map((g) => stringList(g) ?? []) : [];
        found.requirements.source.scopes = `@requireScopes on ${where}`;
        found.requirements.shadow.scopes = args.shadow === true;
        break;
      case 'requirePurpose':
        found.requirements.purposes = stringList(args.anyOf) ?? [];
        found.requirements.source.purposes = `@requirePurpose on ${where}`;
        found.requirements.shadow.purposes = args.shadow === true;
        break;
      case 'mask':
        found.mask = {
          strategy: args.strategy,
          ...(typeof args.size === 'number' ? { size: args.size } : {}),
          ...(args.joinGroup !== undefined && args.joinGroup !== null ? { joinGroup: args.joinGroup } : {}),
          exemptRoles: stringList(args.exemptRoles) ?? [],
          exemptPurposes: stringList(args.exemptPurposes) ?? [],
          shadow: args.shadow === true,
        };
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
}): { requirement: Requirement; rule: string; shadow: Partial<Requirement> | null } {
  const { coordinate, level, violations } = options;
  const base = options.base;
  // Parts in shadow are evaluated on their own (audit only); the enforced rule ignores them.
  const shadow: { -readonly [K in keyof Requirement]?: Requirement[K] } = {};
  const enforced: DomainRequirements = { source: options.domain.source, shadow: {} };
  for (const part of ['roles', 'scopes', 'purposes'] as const) {
    const value = options.domain[part];
    if (value === undefined) continue;
    if (options.domain.shadow[part]) (shadow as Record<string, unknown>)[part] = value;
    else (enforced as unknown as Record<string, unknown>)[part] = value;
  }
  const domain = enforced;
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
    ...(base.subject ? { subject: true } : {}),
    ...(roles ? { roles } : {}),
    ...(scopes ? { scopes } : {}),
    ...(purposes ? { purposes } : {}),
  };
  return { requirement, rule: parts.join('; '), shadow: Object.keys(shadow).length > 0 ? shadow : null };
}

/** The named type of a field, whether its (innermost) values are non-null, and an enum's values. */
function maskedTypeOf(type: TypeNode, enums: ReadonlyMap<string, readonly string[]>): MaskedType {
  const named = (name: string, nonNull: boolean): MaskedType => {
    const enumValues = enums.get(name);
    return enumValues ? { name, nonNull, enumValues } : { name, nonNull };
  };
  if (type.kind === Kind.NAMED_TYPE) return named(type.name.value, false);
  if (type.kind === Kind.LIST_TYPE) return maskedTypeOf(type.type, enums);
  const inner = type.type;
  return inner.kind === Kind.NAMED_TYPE ? named(inner.name.value, true) : maskedTypeOf(inner, enums);
}

/** The mask in force (a domain's, or the strongest default of the field's tags) and one in shadow. */
function effectiveMasks(options: {
  coordinate: string;
  level: Level;
  tags: readonly string[];
  type: MaskedType;
  annotation: MaskAnnotation | undefined;
  rules: GovernanceRules;
  violations: PolicyViolation[];
}): { mask: MaskRule | null; shadow: MaskRule | null } {
  const { coordinate, type, annotation, violations } = options;
  let fallback: MaskRule | null = null;
  const scalar = MASKABLE_SCALARS.includes(type.name) || type.enumValues !== undefined;
  const presets: [string, MaskDefault | undefined][] = [
    [options.level, options.rules.levelMasks?.[options.level]],
    ...options.tags.map((tag): [string, MaskDefault | undefined] => [tag, options.rules.tags[tag]?.mask]),
  ];
  for (const [name, preset] of scalar ? presets : []) {
    if (!preset) continue;
    // A default that does not fit the type becomes REDACT, which fits every scalar and nullable enum.
    const strategy = maskMisfit(preset.strategy, type) ? 'REDACT' : preset.strategy;
    const unfit = maskMisfit(strategy, type);
    if (unfit) {
      // A field the rules want masked, that no mask fits: refused, never served raw.
      violations.push({ coordinate, message: `${coordinate}: the ${name} default mask cannot mask it: ${unfit}.` });
      continue;
    }
    if (!fallback || MASK_STRENGTH[strategy] > MASK_STRENGTH[fallback.strategy]) {
      fallback = { strategy, exemptRoles: preset.exemptRoles, exemptPurposes: preset.exemptPurposes ?? [], rule: `${name} default mask` };
    }
  }
  if (!annotation) return { mask: fallback, shadow: null };
  if (!isMaskStrategy(annotation.strategy)) {
    violations.push({ coordinate, message: `${coordinate}: unknown mask strategy "${String(annotation.strategy)}".` });
    return { mask: fallback, shadow: null };
  }
  const misfit = maskMisfit(annotation.strategy, type);
  if (misfit) {
    violations.push({ coordinate, message: `${coordinate}: @mask(strategy: ${annotation.strategy}) cannot mask it: ${misfit}.` });
    return { mask: fallback, shadow: null };
  }
  if (annotation.joinGroup !== undefined) {
    if (annotation.strategy !== 'HASH') {
      violations.push({ coordinate, message: `${coordinate}: @mask(joinGroup:) applies to HASH only.` });
      return { mask: fallback, shadow: null };
    }
    if (typeof annotation.joinGroup !== 'string' || !/^[a-z][a-z0-9-]{0,62}$/.test(annotation.joinGroup)) {
      violations.push({ coordinate, message: `${coordinate}: @mask(joinGroup:) must be lower-case letters, digits and -.` });
      return { mask: fallback, shadow: null };
    }
  }
  const declared: MaskRule = {
    strategy: annotation.strategy,
    ...(annotation.size !== undefined ? { size: annotation.size } : {}),
    ...(typeof annotation.joinGroup === 'string' ? { joinGroup: annotation.joinGroup } : {}),
    exemptRoles: annotation.exemptRoles,
    exemptPurposes: annotation.exemptPurposes,
    rule: `@mask on ${coordinate}`,
  };
  if (annotation.shadow) return { mask: fallback, shadow: declared };
  if (fallback) {
    const loosens = (detail: string) =>
      violations.push({ coordinate, message: `${coordinate}: @mask(strategy: ${declared.strategy}) loosens the global ${fallback!.rule} (${detail}).` });
    const extraRoles = declared.exemptRoles.filter((role) => !fallback.exemptRoles.includes(role));
    const extraPurposes = declared.exemptPurposes.filter((purpose) => !fallback.exemptPurposes.includes(purpose));
    if (MASK_STRENGTH[declared.strategy] < MASK_STRENGTH[fallback.strategy]) loosens(`${declared.strategy} hides less than ${fallback.strategy}`);
    else if (extraRoles.length) loosens(`exempts the roles ${list(extraRoles)}, which the default does not`);
    else if (extraPurposes.length) loosens(`exempts the purposes ${list(extraPurposes)}, which the default does not`);
    else return { mask: declared, shadow: null };
    return { mask: fallback, shadow: null };
  }
  return { mask: declared, shadow: null };
}

/** Reads every object type's fields and policies from a schema document. */
export function readPolicy(document: DocumentNode, rules: GovernanceRules): PolicyIndex {
  const fields = new Map<string, FieldPolicy>();
  const rows = new Map<string, RowPolicy>();
  const violations: PolicyViolation[] = [];

  // Enum values, so that masks fit enums too (an enum extension adds to its type's values).
  const enums = new Map<string, string[]>();
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.ENUM_TYPE_DEFINITION && definition.kind !== Kind.ENUM_TYPE_EXTENSION) continue;
    enums.set(definition.name.value, [...(enums.get(definition.name.value) ?? []), ...(definition.values ?? []).map((value) => value.name.value)]);
  }
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
      const unclassified = unclassifiedTreatment(rules);
      let level: Level = unclassified.level;
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
        ...Object.fromEntries(Object.entries(onField.requirements).filter(([key]) => key !== 'source' && key !== 'shadow')),
        source: { ...onType.requirements.source, ...onField.requirements.source },
        shadow: { ...onType.requirements.shadow, ...onField.requirements.shadow },
      };
      const base = declared === undefined ? unclassified.requirement : rules.levels[level];
      const { requirement, rule, shadow } = effectiveRequirement({ coordinate, level, base, domain, violations });
      const type = maskedTypeOf(field.type, enums);
      const masks = effectiveMasks({ coordinate, level, tags, type, annotation: onField.mask, rules, violations });
      fields.set(coordinate, {
        coordinate,
        level,
        tags,
        requirement,
        rule: declared === undefined ? rule.replace(`${level} default`, unclassified.rule) : rule,
        type,
        mask: masks.mask,
        shadow: { requirement: shadow, mask: masks.shadow },
      });
    }
  }

  const unmasked = { type: { name: 'String', nonNull: false }, mask: null, shadow: { requirement: null, mask: null } };
  const openPolicy = (coordinate: string): FieldPolicy => ({
    coordinate,
    level: 'PUBLIC',
    tags: [],
    requirement: { authenticated: false },
    rule: 'federation machinery',
    ...unmasked,
  });
  return {
    fields,
    violations,
    field(typeName, fieldName) {
      const coordinate = `${typeName}.${fieldName}`;
      if (OPEN_FIELDS.has(coordinate)) return openPolicy(coordinate);
      const unclassified = unclassifiedTreatment(rules);
      return (
        fields.get(coordinate) ?? {
          coordinate,
          level: unclassified.level,
          tags: [],
          requirement: unclassified.requirement,
          rule: unclassified.rule,
          ...unmasked,
        }
      );
    },
    rowPolicy: (typeName) => rows.get(typeName) ?? null,
  };
}
