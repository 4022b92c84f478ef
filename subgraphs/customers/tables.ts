/**
 * The customers warehouse: its tables, as loaded from the CRM's raw files.
 */
import type { TableSpec } from '../kit/warehouse/tables.js';

export type CustomerRow = {
  id: string;
  name: string;
  email: string;
  phone: string;
  birth_date: string;
  country: string;
  region: string;
  segment: string;
  signup_date: string;
};

export type AddressRow = {
  id: string;
  customer_id: string;
  kind: string;
  line1: string;
  city: string;
  postal_code: string;
  country: string;
  is_primary: boolean;
};

export interface CustomersWarehouse {
  customers: CustomerRow;
  addresses: AddressRow;
}

export const customersTables: readonly TableSpec[] = [
  {
    name: 'customers',
    primaryKey: ['id'],
    columns: [
      { name: 'id', type: 'varchar' },
      { name: 'name', type: 'varchar' },
      { name: 'email', type: 'varchar' },
      { name: 'phone', type: 'varchar' },
      { name: 'birth_date', type: 'date' },
      { name: 'country', type: 'varchar' },
      { name: 'region', type: 'varchar' },
      { name: 'segment', type: 'varchar' },
      { name: 'signup_date', type: 'date' },
    ],
  },
  {
    name: 'addresses',
    primaryKey: ['id'],
    indexes: [['customer_id']],
    columns: [
      { name: 'id', type: 'varchar' },
      { name: 'customer_id', type: 'varchar' },
      { name: 'kind', type: 'varchar' },
      { name: 'line1', type: 'varchar' },
      { name: 'city', type: 'varchar' },
      { name: 'postal_code', type: 'varchar' },
      { name: 'country', type: 'varchar' },
      { name: 'is_primary', type: 'boolean' },
    ],
  },
];
