/**
 * Placeholders: what a scaffolded domain could not infer from its source (who owns the product,
 * what it is for) is written as `<fill in: …>`. The domain starts and serves with them, for its
 * team's tests; the registry refuses to publish a subgraph whose SDL or data product documents
 * still hold one (GOVERNANCE_PLACEHOLDER), naming each.
 */

/** A placeholder for what the owner must write. */
export function placeholder(what: string): string {
  return `<fill in: ${what}>`;
}

const PLACEHOLDER = /<fill in: [^>]*>/g;

/** The placeholders a text holds. */
export function placeholdersIn(text: string): string[] {
  return text.match(PLACEHOLDER) ?? [];
}

/** Every string of a JSON value holding a placeholder, by its path (`owners[0].username`). */
export function placeholdersInValue(value: unknown, path = ''): { readonly path: string; readonly placeholder: string }[] {
  if (typeof value === 'string') return placeholdersIn(value).map((found) => ({ path, placeholder: found }));
  if (Array.isArray(value)) return value.flatMap((item, i) => placeholdersInValue(item, `${path}[${i}]`));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([key, item]) => placeholdersInValue(item, path ? `${path}.${key}` : key));
  }
  return [];
}
