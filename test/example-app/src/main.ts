/**
 * The example app: a customer's overview and the most expensive products, through the typed
 * client. `GATEWAY_URL` and `APP_TOKEN` say where and as whom.
 */
import { execute } from './client.js';
import { CustomerOverview, TopProducts } from './operations.js';

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
