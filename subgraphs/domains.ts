/**
 * Every domain subgraph of the mesh. A new domain is a folder with the same shape, added here.
 */
import { customers } from './customers/index.js';
import type { Domain } from './kit/domain.js';
import { finance } from './finance/index.js';
import { products } from './products/index.js';

// Each domain is typed by its own warehouse and repository; the list only needs the common shape.
export type AnyDomain = Domain<any, any>;

export const domains: readonly AnyDomain[] = [customers, products, finance];

export function findDomain(name: string): AnyDomain | undefined {
  return domains.find((domain) => domain.name === name);
}
