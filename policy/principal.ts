/**
 * Who is asking: the verified identity behind a request, in the platform's terms.
 */
import { createHash } from 'node:crypto';

export interface Principal {
  /** No token was given: only PUBLIC fields are open to it. */
  readonly anonymous: boolean;
  /** The token's subject (`sub`), for audit. */
  readonly subject: string | null;
  readonly issuer: string | null;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  /** The declared purpose of use (GDPR purpose limitation). */
  readonly purpose: string | null;
  /**
   * The application the token was issued to (`azp`, else `client_id`), when it names one: an app
   * registered for trusted documents may send only its registered operations.
   */
  readonly client: string | null;
  /** Values that row policies match, by claim name (e.g. `regions`). */
  readonly attributes: Readonly<Record<string, readonly string[]>>;
}

export const ANONYMOUS: Principal = Object.freeze({
  anonymous: true,
  subject: null,
  issuer: null,
  roles: [],
  scopes: [],
  purpose: null,
  client: null,
  attributes: {},
});

const classes = new WeakMap<Principal, string>();

/**
 * What the policy reads of a principal, as a short hash: principals of one class see the same
 * answers. Computed once per principal (one per request): the response cache and the pre-plan
 * policy both key on it.
 */
export function policyClassOf(principal: Principal): string {
  let known = classes.get(principal);
  if (known === undefined) {
    known = classOf(principal);
    classes.set(principal, known);
  }
  return known;
}

function classOf(principal: Principal): string {
  const sorted = (values: readonly string[]) => [...values].sort();
  const attributes = Object.fromEntries(
    Object.keys(principal.attributes)
      .sort()
      .map((name) => [name, sorted(principal.attributes[name] ?? [])]),
  );
  const facts = { anonymous: principal.anonymous, subject: principal.subject !== null, roles: sorted(principal.roles), scopes: sorted(principal.scopes), purpose: principal.purpose, attributes };
  return createHash('sha256').update(JSON.stringify(facts)).digest('hex').slice(0, 32);
}
