/**
 * The customers data products, read from the customers warehouse. Every list is filtered, ordered
 * and paged in SQL; lookups by key are batched per request.
 */
import type { Expression, Kysely, SqlBool } from 'kysely';
import {
  listQuery,
  orderingOf,
  pageQuery,
  readPageArgs,
  toConnection,
  type Connection,
  type ListArgs,
  type Selection,
  type PageArgs,
  type SortColumn,
} from '../kit/connection.js';
import { anyOf, atLeast, atMost, containsText, countRows, guardArguments, listArguments, rowCondition, timeWindow, whereAll, type ArgumentField, type RequestAccess } from '../kit/filters.js';
import { manyByKey, oneByKey, type RequestLoaders } from '../kit/loaders.js';
import type { AddressRow, CustomerRow, CustomersWarehouse } from './tables.js';

export interface Customer {
  readonly id: string;
  readonly name: string;
  readonly email: string;
  readonly phone: string;
  readonly birthDate: string;
  readonly country: string;
  readonly region: string;
  readonly segment: string;
  readonly signupDate: string;
}

export interface Address {
  readonly id: string;
  readonly kind: string;
  readonly line1: string;
  readonly city: string;
  readonly postalCode: string;
  readonly country: string;
  readonly isPrimary: boolean;
}

export interface CustomerFilter {
  readonly country?: readonly string[] | null;
  readonly region?: readonly string[] | null;
  readonly segment?: readonly string[] | null;
  readonly signedUpFrom?: string | null;
  readonly signedUpTo?: string | null;
  readonly nameContains?: string | null;
}

export type CustomerSortField = 'ID' | 'NAME' | 'SIGNUP_DATE';

/** What selects customers; the window is on the sign-up date. */
export type CustomerSelection = Selection<CustomerFilter, CustomerSortField>;

export interface CustomersArgs extends PageArgs, CustomerSelection {}

export interface CustomerListArgs extends ListArgs, CustomerSelection {}

const BY_ID: SortColumn = { column: 'id', field: 'Customer.id' };
const CUSTOMER_ORDER_COLUMNS: Record<CustomerSortField, readonly SortColumn[]> = {
  ID: [BY_ID],
  NAME: [{ column: 'name', field: 'Customer.name' }, BY_ID],
  SIGNUP_DATE: [{ column: 'signup_date', cast: 'date', field: 'Customer.signupDate' }, BY_ID],
};

/** The field each argument of a customer list reads: none may reveal what the principal cannot see. */
const CUSTOMER_ARGUMENTS: Record<`filter.${keyof CustomerFilter}` | 'from' | 'to', ArgumentField> = {
  'filter.country': { field: 'Customer.country' },
  'filter.region': { field: 'Customer.region' },
  'filter.segment': { field: 'Customer.segment' },
  'filter.signedUpFrom': { field: 'Customer.signupDate', edge: 'from' },
  'filter.signedUpTo': { field: 'Customer.signupDate', edge: 'to-inclusive' },
  'filter.nameContains': { field: 'Customer.name' },
  from: { field: 'Customer.signupDate', edge: 'from' },
  to: { field: 'Customer.signupDate', edge: 'to-exclusive' },
};

function toCustomer(row: CustomerRow): Customer {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    phone: row.phone,
    birthDate: row.birth_date,
    country: row.country,
    region: row.region,
    segment: row.segment,
    signupDate: row.signup_date,
  };
}

function toAddress(row: AddressRow): Address {
  return {
    id: row.id,
    kind: row.kind,
    line1: row.line1,
    city: row.city,
    postalCode: row.postal_code,
    country: row.country,
    isPrimary: row.is_primary,
  };
}

function customerConditions(filter: CustomerFilter | null | undefined): Expression<SqlBool>[] {
  const conditions: Expression<SqlBool>[] = [];
  if (!filter) return conditions;
  if (filter.country) conditions.push(anyOf('country', filter.country, 'filter.country'));
  if (filter.region) conditions.push(anyOf('region', filter.region, 'filter.region'));
  if (filter.segment) conditions.push(anyOf('segment', filter.segment, 'filter.segment'));
  if (filter.signedUpFrom) conditions.push(atLeast('signup_date', filter.signedUpFrom, 'date'));
  if (filter.signedUpTo) conditions.push(atMost('signup_date', filter.signedUpTo, 'date'));
  if (filter.nameContains != null) conditions.push(containsText('name', filter.nameContains, 'filter.nameContains'));
  return conditions;
}

export interface CustomersRepository {
  customer(id: string): Promise<Customer | null>;
  customers(args: CustomersArgs): Promise<Connection<Customer>>;
  customerList(args: CustomerListArgs): Promise<Customer[]>;
  addressesOf(customerId: string): Promise<Address[]>;
}

export function createCustomersRepository(
  db: Kysely<CustomersWarehouse>,
  loaders: RequestLoaders,
  access: RequestAccess,
): CustomersRepository {
  // The customers the principal may see: every query of the table carries this condition.
  const visible = () => {
    const condition = rowCondition(access.rows('Customer'));
    return condition ? [condition] : [];
  };
  const customerById = () =>
    loaders.get<string, Customer | null>('Customer.byId', null, async (ids) => {
      const rows = await whereAll(db.selectFrom('customers').selectAll().where('id', 'in', ids), visible()).execute();
      return oneByKey(ids, rows.map(toCustomer), (customer) => customer.id);
    });
  const addressesByCustomer = () =>
    loaders.get<string, Address[]>('Customer.addresses', null, async (ids) => {
      const rows = await db
        .selectFrom('addresses')
        .selectAll()
        .where('customer_id', 'in', ids)
        .orderBy('customer_id')
        .orderBy('kind')
        .orderBy('id')
        .execute();
      return manyByKey(ids, rows, (row) => row.customer_id).map((group) => group.map(toAddress));
    });

  const selection = (args: CustomerSelection) => {
    // Searching, filtering or ordering by a field would reveal it to whoever sees it masked.
    guardArguments(access, listArguments(args), CUSTOMER_ARGUMENTS);
    const ordering = orderingOf({
      list: 'customers',
      columnsByField: CUSTOMER_ORDER_COLUMNS,
      order: args.orderBy,
      fallback: { field: 'ID', direction: 'ASC' },
      access,
    });
    const conditions = [...customerConditions(args.filter), ...timeWindow('signup_date', args, 'date'), ...visible()];
    return { ordering, conditions };
  };

  return {
    customer: (id) => customerById().load(id),
    addressesOf: (customerId) => addressesByCustomer().load(customerId),
    async customers(args) {
      const { ordering, conditions } = selection(args);
      const page = readPageArgs(args, ordering);
      const rows = await pageQuery(whereAll(db.selectFrom('customers').selectAll(), conditions), page).execute();
      return toConnection(rows, page, toCustomer, () => countRows(whereAll(db.selectFrom('customers'), conditions)));
    },
    async customerList(args) {
      const { ordering, conditions } = selection(args);
      const rows = await listQuery(whereAll(db.selectFrom('customers').selectAll(), conditions), ordering, args).execute();
      return rows.map(toCustomer);
    },
  };
}
