import type { DomainContext, GraphQLResolverMap } from '@data-mesh/kit';
import type { Customer, CustomerListArgs, CustomersArgs, CustomersRepository } from './repository.js';

type Context = DomainContext<CustomersRepository>;

export const customersResolvers: GraphQLResolverMap<Context> = {
  Query: {
    customer: (_: unknown, { id }: { id: string }, { repo }: Context) => repo.customer(id),
    customers: (_: unknown, args: CustomersArgs, { repo }: Context) => repo.customers(args),
    customerList: (_: unknown, args: CustomerListArgs, { repo }: Context) => repo.customerList(args),
  },
  Customer: {
    __resolveReference: ({ id }: { id: string }, { repo }: Context) => repo.customer(id),
    addresses: (customer: Customer, _: unknown, { repo }: Context) => repo.addressesOf(customer.id),
  },
};
