/**
 * The example app: a customer's overview and the most expensive products, and the orders as they
 * change, through the typed client. `GATEWAY_URL` and `APP_TOKEN` say where and as whom.
 */
import { execute, subscribe } from './client.js';
import type { OrderUpdatesSubscriptionVariables } from './gql/graphql.js';
import { CustomerOverview, OrderUpdates, TopProducts } from './operations.js';

export async function overview(options: { url: string; token: string }, customerId: string): Promise<string[]> {
  const lines: string[] = [];
  const customer = await execute(options, CustomerOverview, { id: customerId });
  const c = customer.data?.customer;
  if (c) {
    lines.push(`${c.id} ${c.country} ${c.segment}: lifetime value ${c.lifetimeValue ?? 'n/a'}, ${c.orders?.totalCount ?? 0} orders`);
    for (const order of c.orders?.nodes ?? []) lines.push(`  ${order.id} ${order.orderedAt} ${order.total.toFixed(2)}`);
  }
  const products = await execute(options, TopProducts, { first: 3 });
  for (const product of products.data?.products?.nodes ?? []) {
    lines.push(`${product.sku} ${product.name} ${product.listPrice.toFixed(2)} (${product.category?.name ?? 'no category'})`);
  }
  return lines;
}

/** The next `count` order changes (of orders in `status`, if given), one line each. */
export async function watchOrders(options: { url: string; token: string }, count: number, status?: OrderUpdatesSubscriptionVariables['status']): Promise<string[]> {
  const lines: string[] = [];
  const changes = subscribe(options, OrderUpdates, status ? { status } : {});
  for await (const change of changes) {
    const c = change.data?.orderChanged;
    if (c) lines.push(`${c.position} ${c.operation} ${c.key}${c.order ? ` ${c.order.status} ${c.order.total.toFixed(2)}` : ''}`);
    if (lines.length >= count) break;
  }
  await changes.return?.();
  return lines;
}
