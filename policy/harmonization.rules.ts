/**
 * The global harmonization rules of data products, owned by the governance group beside the
 * governance rules: the metadata every product must carry, the conventions of product addresses and
 * field names, the statuses a product may be in. A subgraph whose products break them does not
 * start, naming each product and rule (see `checkHarmonization`).
 */

export interface HarmonizationRules {
  /** A product's name within its domain; its address is `<domain>.<name>`. */
  readonly productName: { readonly pattern: RegExp; readonly convention: string };
  /** The fields of a product's type. */
  readonly fieldName: { readonly pattern: RegExp; readonly convention: string };
  readonly statuses: readonly string[];
  readonly version: { readonly pattern: RegExp; readonly convention: string };
  /** Roles at least one owner must hold. */
  readonly requiredOwnerRole: string;
  /** SLA properties every product states. */
  readonly requiredSla: readonly string[];
}

export const harmonizationRules: HarmonizationRules = {
  productName: { pattern: /^[a-z][a-z0-9_]{1,62}$/, convention: 'lower snake_case, 2 to 63 characters' },
  fieldName: { pattern: /^[a-z][A-Za-z0-9]*$/, convention: 'lowerCamelCase' },
  statuses: ['draft', 'active', 'deprecated', 'retired'],
  version: { pattern: /^\d+\.\d+\.\d+$/, convention: 'semantic versioning, MAJOR.MINOR.PATCH' },
  requiredOwnerRole: 'owner',
  requiredSla: ['frequency', 'availability'],
};

/** What the rules look at in a product (the kit's declarations give it). */
export interface ProductFacts {
  readonly domain: string;
  readonly name: string;
  /** The fields of its GraphQL type. */
  readonly fields: readonly string[];
  readonly metadata: {
    readonly title: string;
    readonly version: string;
    readonly status: string;
    readonly description: { readonly purpose: string };
    readonly owners: readonly { readonly role: string }[];
    readonly inputPorts: readonly unknown[];
    readonly sla: readonly { readonly property: string; readonly element?: string }[];
  };
}

export interface HarmonizationViolation {
  /** `<domain>.<name>`. */
  readonly product: string;
  readonly rule: 'product-name' | 'field-name' | 'status' | 'version' | 'required-metadata' | 'owner' | 'sla';
  readonly message: string;
}

export function checkHarmonization(products: readonly ProductFacts[], rules: HarmonizationRules = harmonizationRules): HarmonizationViolation[] {
  const violations: HarmonizationViolation[] = [];
  for (const facts of products) {
    const product = `${facts.domain}.${facts.name}`;
    const add = (rule: HarmonizationViolation['rule'], message: string) => violations.push({ product, rule, message: `${product}: ${message}` });
    const { metadata } = facts;
    if (!rules.productName.pattern.test(facts.name)) add('product-name', `the name "${facts.name}" is not ${rules.productName.convention}.`);
    for (const field of facts.fields) if (!rules.fieldName.pattern.test(field)) add('field-name', `the field "${field}" is not ${rules.fieldName.convention}.`);
    if (!rules.statuses.includes(metadata.status)) add('status', `the status "${metadata.status}" is not one of ${rules.statuses.join(', ')}.`);
    if (!rules.version.pattern.test(metadata.version)) add('version', `the version "${metadata.version}" is not ${rules.version.convention}.`);
    const missing = [
      ...(metadata.title.trim() === '' ? ['title'] : []),
      ...(metadata.description.purpose.trim() === '' ? ['description.purpose'] : []),
      ...(metadata.inputPorts.length === 0 ? ['inputPorts'] : []),
    ];
    if (missing.length > 0) add('required-metadata', `it lacks ${missing.join(', ')}.`);
    if (!metadata.owners.some((owner) => owner.role === rules.requiredOwnerRole)) add('owner', `no owner has the role "${rules.requiredOwnerRole}".`);
    const stated = new Set(metadata.sla.map((sla) => sla.property));
    const absent = rules.requiredSla.filter((property) => !stated.has(property));
    if (absent.length > 0) add('sla', `its service level does not state ${absent.join(', ')}.`);
    for (const sla of metadata.sla) if (sla.property === 'latency' && !sla.element) add('sla', 'its latency does not name the column it is measured on.');
  }
  return violations;
}
