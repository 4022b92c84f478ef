import type { DomainContext, GraphQLResolverMap } from '@data-mesh/kit';
import type {
  FinanceRepository,
  Invoice,
  InvoiceListArgs,
  InvoicesArgs,
  Order,
  OrderLine,
  OrderListArgs,
  OrdersArgs,
  SalesAggregateArgs,
  SalesGroup,
} from './repository.js';

type Context = DomainContext<FinanceRepository>;

export const financeResolvers: GraphQLResolverMap<Context> = {
  Query: {
    order: (_: unknown, { id }: { id: string }, { repo }: Context) => repo.order(id),
    orders: (_: unknown, args: OrdersArgs, { repo }: Context) => repo.orders(args),
    invoice: (_: unknown, { id }: { id: string }, { repo }: Context) => repo.invoice(id),
    invoices: (_: unknown, args: InvoicesArgs, { repo }: Context) => repo.invoices(args),
    orderList: (_: unknown, args: OrderListArgs, { repo }: Context) => repo.orderList(args),
    invoiceList: (_: unknown, args: InvoiceListArgs, { repo }: Context) => repo.invoiceList(args),
    salesAggregate: (_: unknown, args: SalesAggregateArgs, { repo }: Context) => repo.salesAggregate(args),
  },
  SalesAggregate: {
    product: (group: SalesGroup) => (group.sku === null ? null : { sku: group.sku }),
    category: (group: SalesGroup) => (group.categoryId === null ? null : { id: group.categoryId }),
  },
  // Customers and products are other domains' entities: finance knows them by key only, so a
  // reference is resolved without reading anything (the owning subgraph decides whether it exists).
  Customer: {
    __resolveReference: ({ id }: { id: string }) => ({ id }),
    orders: ({ id }: { id: string }, args: OrdersArgs, { repo }: Context) => repo.ordersOfCustomer(id, args),
  },
  Product: {
    __resolveReference: ({ sku }: { sku: string }) => ({ sku }),
    unitsSold: async ({ sku }: { sku: string }, _: unknown, { repo }: Context) => (await repo.productSales(sku)).unitsSold,
    revenue: async ({ sku }: { sku: string }, _: unknown, { repo }: Context) => (await repo.productSales(sku)).revenue,
  },
  Order: {
    __resolveReference: ({ id }: { id: string }, { repo }: Context) => repo.order(id),
    customer: (order: Order) => ({ id: order.customerId }),
    lines: (order: Order, _: unknown, { repo }: Context) => repo.linesOf(order.id),
    invoice: (order: Order, _: unknown, { repo }: Context) => repo.invoiceOfOrder(order.id),
  },
  OrderLine: {
    product: (line: OrderLine) => ({ sku: line.sku }),
  },
  Invoice: {
    __resolveReference: ({ id }: { id: string }, { repo }: Context) => repo.invoice(id),
    // An invoice always belongs to an order of the same warehouse.
    order: (invoice: Invoice, _: unknown, { repo }: Context) => repo.order(invoice.orderId),
    payments: (invoice: Invoice, _: unknown, { repo }: Context) => repo.paymentsOf(invoice.id),
  },
};
