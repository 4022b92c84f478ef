/**
 * The customers domain's data product `customers`, declared once: the kit serves its lookups,
 * lists, connection and counts from the declaration (see kit/data-product.ts), with filters,
 * windows, orderings and the customers' row policy applied on every path. A customer's addresses
 * are part of it, read in one batched statement per request.
 */
import { anyOfCategories, atLeast, atMost, containsText, defineDataProduct, manyByKey, type Connection, type DialectSql, type Kysely, type ListArgs, type PageArgs, type RequestAccess, type RequestLoaders, type Selection, type SortColumn } from '@data-mesh/kit';
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
  readonly lifetimeValue: number | null;
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

/** Data product `customers`: one row per customer, from the CRM. */
export const customersProduct = defineDataProduct<CustomerRow, Customer, CustomerFilter, CustomerSortField>({
  name: 'customers',
  metadata: {
    title: 'Customers',
    version: '1.0.0',
    status: 'active',
    description: {
      purpose: 'One row per customer of the business: who they are, where, which segment, since when.',
      limitations: 'Personal data (GDPR): names, emails and phones are pseudonymized for analysts; birth dates need a declared purpose. Analysts see the customers of their regions.',
      usage: 'Segment and count customers by country, region, segment or sign-up date; join orders by customer id.',
    },
    tags: ['customer', 'pii', 'crm'],
    owners: [
      { username: 'customers-team@example.com', name: 'Customers domain team', role: 'owner' },
      { username: 'privacy-office@example.com', name: 'Privacy office', role: 'data steward' },
    ],
    inputPorts: [
      { name: 'crm.customers', version: '1.0.0', contractId: 'crm.customers.csv', description: 'CRM export: customers.csv' },
      { name: 'crm.addresses', version: '1.0.0', contractId: 'crm.addresses.csv', description: 'CRM export: addresses.csv' },
    ],
    sla: [
      { property: 'frequency', value: 1, unit: 'd', description: 'Rebuilt from the CRM export at each ingestion, daily.' },
      { property: 'latency', value: 24, unit: 'h', element: 'signup_date' },
      { property: 'availability', value: 99.5, unit: '%' },
      { property: 'retention', value: 10, unit: 'y' },
    ],
  },
  // Each customer's lifetime value: from the finance domain's orders, read as their change feed announces them.
  inputs: [
    {
      product: 'finance.orders',
      description: "Each order's customer, status and total, read through the gateway as finance.orders' change feed announces them: the lifetime values.",
      fields: ['lifetimeValue'],
      table: 'customer_orders',
      field: 'orders',
      keyFilter: 'id',
      selection: 'id customer { id } status total',
      toRow: (order: { id: string; customer: { id: string }; status: string; total: number }) => ({ order_id: order.id, customer_id: order.customer.id, status: order.status, total: order.total }),
    },
  ],
  type: 'Customer',
  table: 'customers',
  quality: [
    { name: 'email_format', metric: 'invalidValues', column: 'email', pattern: '[^@\\s]+@[^@\\s]+\\.[A-Za-z]{2,}', mustBe: 0, dimension: 'conformity', severity: 'error', description: 'Every email address has a local part, an @ and a domain.' },
    { name: 'name_present', metric: 'missingValues', column: 'name', missingValues: [''], mustBe: 0, dimension: 'completeness', severity: 'error' },
    { name: 'country_code', metric: 'invalidValues', column: 'country', pattern: '[A-Z]{2}', mustBe: 0, dimension: 'conformity', severity: 'error', description: 'ISO 3166-1 alpha-2.' },
    { name: 'region_known', metric: 'invalidValues', column: 'region', validValues: ['AMERICAS', 'EMEA', 'APAC'], mustBe: 0, dimension: 'conformity', severity: 'error' },
    { name: 'segment_known', metric: 'invalidValues', column: 'segment', validValues: ['CONSUMER', 'SMALL_BUSINESS', 'ENTERPRISE'], mustBe: 0, dimension: 'conformity', severity: 'error' },
    { name: 'phone_present', metric: 'missingValues', column: 'phone', missingValues: [''], mustBeLessOrEqualTo: 1, unit: 'percent', dimension: 'completeness', severity: 'warning' },
    { name: 'not_empty', metric: 'rowCount', mustBeGreaterThan: 0, dimension: 'completeness', severity: 'error' },
    { name: 'signup_recent', metric: 'latency', column: 'signup_date', mustBeLessOrEqualTo: 400 * 86_400, dimension: 'timeliness', severity: 'warning', description: 'The newest sign-up is at most 400 days older than the CRM export: an old export delivered again shows here.' },
  ],
  key: 'id',
  columns: {
    id: 'id',
    name: 'name',
    email: 'email',
    phone: 'phone',
    birthDate: 'birth_date',
    country: 'country',
    region: 'region',
    segment: 'segment',
    signupDate: 'signup_date',
    lifetimeValue: 'lifetime_value',
  },
  toNode: (row) => ({
    id: row.id,
    name: row.name,
    email: row.email,
    phone: row.phone,
    birthDate: row.birth_date,
    country: row.country,
    region: row.region,
    segment: row.segment,
    signupDate: row.signup_date,
    lifetimeValue: row.lifetime_value === null || row.lifetime_value === undefined ? null : Number(row.lifetime_value),
  }),
  orderings: {
    ID: [BY_ID],
    NAME: [{ column: 'name', field: 'Customer.name' }, BY_ID],
    SIGNUP_DATE: [{ column: 'signup_date', cast: 'date', field: 'Customer.signupDate' }, BY_ID],
  },
  defaultOrder: { field: 'ID', direction: 'ASC' },
  filters: {
    country: { field: 'Customer.country', where: (codes, argument, dialect) => anyOfCategories('country', codes, argument, dialect) },
    region: { field: 'Customer.region', where: (regions, argument, dialect) => anyOfCategories('region', regions, argument, dialect) },
    segment: { field: 'Customer.segment', where: (segments, argument, dialect) => anyOfCategories('segment', segments, argument, dialect) },
    signedUpFrom: { field: 'Customer.signupDate', edge: 'from', where: (day) => atLeast('signup_date', day, 'date') },
    signedUpTo: { field: 'Customer.signupDate', edge: 'to-inclusive', where: (day) => atMost('signup_date', day, 'date') },
    nameContains: { field: 'Customer.name', where: (text, argument, dialect) => containsText('name', text, argument, dialect) },
  },
  window: { column: 'signup_date', cast: 'date', field: 'Customer.signupDate' },
});

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
  dialect: DialectSql,
): CustomersRepository {
  const customers = customersProduct.reader(db, loaders, access, dialect);
  // Addresses are reached through a customer the principal may see: its row policy holds for them.
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
  return {
    customer: (id) => customers.byKey(id),
    customers: (args) => customers.connection(args),
    customerList: (args) => customers.list(args),
    addressesOf: (customerId) => addressesByCustomer().load(customerId),
  };
}
