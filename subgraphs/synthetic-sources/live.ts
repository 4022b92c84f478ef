/**
 * The synthetic sources, live: each call delivers one increment per domain (see
 * subgraphs/kit/warehouse/increments.ts) as the operational systems would, dated by the clock:
 *
 * - finance: new orders placed in the last hour (PENDING or PAID, with their lines, and an invoice
 *   for the PAID ones); earlier live orders moving on (PENDING → PAID with an invoice, PAID →
 *   SHIPPED); now and then a PENDING order withdrawn (a tombstone for it and its lines);
 * - customers: a few customers changing segment;
 * - products: a few list prices changing (never below the unit cost).
 *
 * Deterministic for a raw folder's sequence of deliveries (each seeded by its number). What later
 * deliveries need (the next ids, the live orders still moving) is kept in `<rawDir>/live.json`; a
 * regenerated raw folder starts again. Each increment is written under a `.`-named folder and
 * renamed into place, so that a load never reads half of one.
 */
import { readFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Faker, base, en } from '@faker-js/faker';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { incrementName, INCREMENTS_FOLDER } from '../kit/warehouse/increments.js';
import { readRawManifest } from './manifest.js';

export interface DeliverOptions {
  /** The generated raw folder (`<rawDir>/<domain>/…`, with its manifest). */
  readonly rawDir: string;
  /** The delivery's clock (default now). */
  readonly now?: Date;
  /** Orders the delivery places or changes (default 20). */
  readonly orders?: number;
  /** Customers and products it changes (default 3 each). */
  readonly changes?: number;
}

export interface Delivery {
  /** The increment's name, the same in each domain's folder. */
  readonly name: string;
  /** Rows per domain file (tombstones included). */
  readonly rows: Readonly<Record<string, number>>;
}

interface LiveOrder {
  readonly id: string;
  readonly customer: string;
  readonly region: string;
  readonly orderedAt: string;
  readonly channel: string;
  status: 'PENDING' | 'PAID' | 'SHIPPED';
  readonly amount: string;
  readonly lines: number;
}

interface LiveState {
  readonly fingerprint: string;
  sequence: number;
  nextOrder: number;
  nextInvoice: number;
  /** Live orders that still move (newest last; at most MAX_LIVE). */
  live: LiveOrder[];
}

const STATE_FILE = 'live.json';
const MAX_LIVE = 500;
const CHANNELS = ['WEB', 'MOBILE_APP', 'STORE'];
const SEGMENTS = ['CONSUMER', 'SMALL_BUSINESS', 'ENTERPRISE'];

const pad = (n: number, width: number) => String(n).padStart(width, '0');
const timestamp = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

async function rowsOf(file: string): Promise<Record<string, string>[]> {
  return parse(await readFile(file, 'utf8'), { columns: true }) as Record<string, string>[];
}

/** The last id of a generated file (ids grow with the rows): `O00500000` → 500000. */
async function lastNumber(file: string, prefix: RegExp): Promise<number> {
  const text = await readFile(file, 'utf8');
  const last = text.trimEnd().slice(text.trimEnd().lastIndexOf('\n') + 1);
  return Number(last.split(',')[0]!.replace(prefix, ''));
}

async function readState(rawDir: string, fingerprint: string): Promise<LiveState> {
  const text = await readFile(join(rawDir, STATE_FILE), 'utf8').catch(() => null);
  const state = text ? (JSON.parse(text) as LiveState) : null;
  if (state?.fingerprint === fingerprint) return state;
  return {
    fingerprint,
    sequence: 0,
    nextOrder: (await lastNumber(join(rawDir, 'finance', 'orders.csv'), /^O/)) + 1,
    nextInvoice: (await lastNumber(join(rawDir, 'finance', 'invoices.csv'), /^INV-/)) + 1,
    live: [],
  };
}

/** Writes one domain's increment: a `.`-named folder renamed into place. */
async function writeIncrement(rawDir: string, domain: string, name: string, files: Record<string, string[][]>): Promise<void> {
  const folder = join(rawDir, domain, INCREMENTS_FOLDER);
  const partial = join(folder, `.${name}`);
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  for (const [file, rows] of Object.entries(files)) await writeFile(join(partial, file), stringify(rows));
  await rename(partial, join(folder, name));
}

/** Delivers one increment to each domain of a generated raw folder. */
export async function deliverIncrement(options: DeliverOptions): Promise<Delivery> {
  const manifest = await readRawManifest(options.rawDir);
  if (!manifest) throw new Error(`${options.rawDir} holds no generated data set (manifest.json): generate it first.`);
  const now = options.now ?? new Date();
  const state = await readState(options.rawDir, manifest.fingerprint);
  state.sequence += 1;
  const faker = new Faker({ locale: [en, base] });
  faker.seed([manifest.seed, state.sequence]);
  const name = incrementName(now, state.sequence);
  const customers = await rowsOf(join(options.rawDir, 'customers', 'customers.csv'));
  const products = await rowsOf(join(options.rawDir, 'products', 'products.csv'));
  const orderCount = options.orders ?? 20;
  const changeCount = options.changes ?? 3;

  // Finance: the live orders move on first, then new orders fill the delivery.
  const orders: string[][] = [['id', 'customer_id', 'ordered_at', 'status', 'channel', 'region', '_deleted']];
  const lines: string[][] = [['order_id', 'line_number', 'sku', 'category_id', 'quantity', 'unit_price', 'discount', '_deleted']];
  const invoices: string[][] = [['id', 'order_id', 'issued_on', 'due_on', 'amount', 'status']];
  const invoice = (order: LiveOrder) => {
    invoices.push([`INV-${pad(state.nextInvoice++, 8)}`, order.id, day(now.getTime()), day(now.getTime() + 30 * 86_400_000), order.amount, 'OPEN']);
  };
  const row = (order: LiveOrder, deleted = false) => [order.id, order.customer, order.orderedAt, order.status, order.channel, order.region, deleted ? 'true' : 'false'];
  const moving = faker.helpers.arrayElements(state.live, Math.min(state.live.length, Math.floor(orderCount / 4)));
  const withdrawn = new Set<string>();
  for (const order of moving) {
    if (order.status === 'PENDING' && withdrawn.size === 0 && faker.number.float() < 0.2) {
      // Withdrawn before payment: gone from the order system, with its lines.
      withdrawn.add(order.id);
      orders.push(row(order, true));
      for (let line = 1; line <= order.lines; line += 1) lines.push([order.id, String(line), '', '', '', '', '', 'true']);
      continue;
    }
    order.status = order.status === 'PENDING' ? 'PAID' : 'SHIPPED';
    if (order.status === 'PAID') invoice(order);
    orders.push(row(order));
  }
  state.live = state.live.filter((order) => !withdrawn.has(order.id) && order.status !== 'SHIPPED');
  for (let i = moving.length; i < orderCount; i += 1) {
    const customer = faker.helpers.arrayElement(customers);
    const id = `O${pad(state.nextOrder++, 8)}`;
    let cents = 0;
    const count = faker.number.int({ min: 1, max: 3 });
    for (let line = 1; line <= count; line += 1) {
      const product = faker.helpers.arrayElement(products);
      const quantity = faker.number.int({ min: 1, max: 4 });
      const discount = faker.helpers.arrayElement(['0.000', '0.000', '0.050', '0.100']);
      cents += Math.round(quantity * Math.round(Number(product.list_price) * 100) * (1 - Number(discount)));
      lines.push([id, String(line), product.sku!, product.category_id!, String(quantity), product.list_price!, discount, 'false']);
    }
    const order: LiveOrder = {
      id,
      customer: customer.id!,
      region: customer.region!,
      orderedAt: timestamp(now.getTime() - faker.number.int({ min: 0, max: 3_600_000 })),
      channel: faker.helpers.arrayElement(CHANNELS),
      status: faker.number.float() < 0.5 ? 'PENDING' : 'PAID',
      amount: (cents / 100).toFixed(2),
      lines: count,
    };
    if (order.status === 'PAID') invoice(order);
    orders.push(row(order));
    state.live.push(order);
  }
  state.live = state.live.slice(-MAX_LIVE);

  // Customers and products: a few changes each.
  const customerRows: string[][] = [Object.keys(customers[0]!)];
  for (const customer of faker.helpers.arrayElements(customers, changeCount)) {
    customerRows.push(Object.values({ ...customer, segment: faker.helpers.arrayElement(SEGMENTS.filter((segment) => segment !== customer.segment)) }));
  }
  const productRows: string[][] = [Object.keys(products[0]!)];
  for (const product of faker.helpers.arrayElements(products, changeCount)) {
    const price = Math.max(Number(product.unit_cost), Number(product.list_price) * faker.helpers.arrayElement([0.95, 1.05]));
    productRows.push(Object.values({ ...product, list_price: price.toFixed(2) }));
  }

  await writeIncrement(options.rawDir, 'finance', name, { 'orders.csv': orders, 'order_lines.csv': lines, ...(invoices.length > 1 ? { 'invoices.csv': invoices } : {}) });
  await writeIncrement(options.rawDir, 'customers', name, { 'customers.csv': customerRows });
  await writeIncrement(options.rawDir, 'products', name, { 'products.csv': productRows });
  await writeFile(join(options.rawDir, STATE_FILE), `${JSON.stringify(state)}\n`);
  return {
    name,
    rows: { 'finance/orders': orders.length - 1, 'finance/order_lines': lines.length - 1, 'finance/invoices': invoices.length - 1, 'customers/customers': customerRows.length - 1, 'products/products': productRows.length - 1 },
  };
}
