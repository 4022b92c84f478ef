/**
 * A deterministic synthetic data generator standing in for the domains' operational systems.
 *
 * It writes raw CSV files, one folder per domain, which each domain's own ingestion step loads into
 * its warehouse. The same seed and scale always give byte-identical files. Scale 1 is about 10k
 * customers, 1k products and 100k orders (~250k order lines); scale 5 passes 1M order lines.
 *
 * Values are made to look real: local names, emails and international phone numbers per country,
 * purchase frequency and product popularity with heavy tails, seasonal order dates over five years.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { stringify } from 'csv-stringify';
import {
  Faker,
  base,
  de,
  en,
  en_AU,
  en_CA,
  en_GB,
  en_IN,
  en_US,
  es,
  es_MX,
  fr,
  it,
  ja,
  ko,
  nl,
  pl,
  pt_BR,
  sv,
  type LocaleDefinition,
} from '@faker-js/faker';
import { DEFAULT_SEED, GENERATOR_VERSION, fingerprintOf, type GenerateOptions, type RawManifest } from './manifest.js';

export type { GenerateOptions, RawManifest } from './manifest.js';

/** Orders fall between these dates; the data set's "today" is the end. */
export const PERIOD_START = Date.UTC(2021, 0, 1);
export const PERIOD_END = Date.UTC(2025, 11, 31, 23, 59, 59);
const DAY = 86_400_000;

interface CountryProfile {
  readonly code: string;
  readonly region: 'AMERICAS' | 'EMEA' | 'APAC';
  readonly weight: number;
  readonly locale: LocaleDefinition;
  /** Names in a non-Latin script get a romanized email address. */
  readonly romanizedEmail?: boolean;
}

const COUNTRIES: readonly CountryProfile[] = [
  { code: 'US', region: 'AMERICAS', weight: 30, locale: en_US },
  { code: 'CA', region: 'AMERICAS', weight: 5, locale: en_CA },
  { code: 'BR', region: 'AMERICAS', weight: 5, locale: pt_BR },
  { code: 'MX', region: 'AMERICAS', weight: 4, locale: es_MX },
  { code: 'GB', region: 'EMEA', weight: 9, locale: en_GB },
  { code: 'DE', region: 'EMEA', weight: 9, locale: de },
  { code: 'FR', region: 'EMEA', weight: 7, locale: fr },
  { code: 'ES', region: 'EMEA', weight: 4, locale: es },
  { code: 'IT', region: 'EMEA', weight: 4, locale: it },
  { code: 'NL', region: 'EMEA', weight: 3, locale: nl },
  { code: 'SE', region: 'EMEA', weight: 2, locale: sv },
  { code: 'PL', region: 'EMEA', weight: 2, locale: pl },
  { code: 'JP', region: 'APAC', weight: 6, locale: ja, romanizedEmail: true },
  { code: 'KR', region: 'APAC', weight: 3, locale: ko, romanizedEmail: true },
  { code: 'AU', region: 'APAC', weight: 4, locale: en_AU },
  { code: 'IN', region: 'APAC', weight: 3, locale: en_IN },
];

interface CategoryProfile {
  readonly id: string;
  readonly name: string;
  readonly department: string;
  /** List prices are log-uniform in this range. */
  readonly price: readonly [number, number];
  /** What the category's products are called. */
  readonly nouns: readonly string[];
  /** Model numbers after the name (electronics). */
  readonly models?: boolean;
}

const CATEGORIES: readonly CategoryProfile[] = [
  { id: 'laptops', name: 'Laptops', department: 'Electronics', price: [450, 2800], nouns: ['Laptop', 'Notebook', 'Ultrabook', 'Chromebook'], models: true },
  { id: 'phones', name: 'Phones', department: 'Electronics', price: [180, 1400], nouns: ['Smartphone', 'Phone', 'Phone Mini', 'Phone Pro'], models: true },
  { id: 'audio', name: 'Audio', department: 'Electronics', price: [25, 450], nouns: ['Headphones', 'Earbuds', 'Speaker', 'Soundbar', 'Turntable'] },
  { id: 'cameras', name: 'Cameras', department: 'Electronics', price: [150, 2200], nouns: ['Mirrorless Camera', 'Action Camera', 'Compact Camera', 'Lens'], models: true },
  { id: 'accessories', name: 'Accessories', department: 'Electronics', price: [8, 120], nouns: ['USB-C Cable', 'Charger', 'Power Bank', 'Phone Case', 'Keyboard', 'Mouse'] },
  { id: 'kitchen', name: 'Kitchen', department: 'Home', price: [12, 600], nouns: ['Chef Knife', 'Frying Pan', 'Kettle', 'Blender', 'Coffee Grinder', 'Dutch Oven'] },
  { id: 'furniture', name: 'Furniture', department: 'Home', price: [60, 1900], nouns: ['Desk', 'Armchair', 'Bookshelf', 'Dining Table', 'Sofa', 'Office Chair'] },
  { id: 'bedding', name: 'Bedding', department: 'Home', price: [20, 300], nouns: ['Duvet', 'Pillow', 'Sheet Set', 'Blanket', 'Mattress Topper'] },
  { id: 'lighting', name: 'Lighting', department: 'Home', price: [15, 400], nouns: ['Floor Lamp', 'Desk Lamp', 'Pendant Light', 'LED Strip', 'Wall Sconce'] },
  { id: 'running', name: 'Running', department: 'Sports', price: [20, 220], nouns: ['Running Shoes', 'Running Jacket', 'Running Tights', 'Hydration Vest'] },
  { id: 'cycling', name: 'Cycling', department: 'Sports', price: [15, 3500], nouns: ['Road Bike', 'Gravel Bike', 'Bike Helmet', 'Bike Light', 'Cycling Jersey'] },
  { id: 'outdoor', name: 'Outdoor', department: 'Sports', price: [10, 650], nouns: ['Tent', 'Sleeping Bag', 'Backpack', 'Trekking Poles', 'Headlamp'] },
  { id: 'fitness', name: 'Fitness', department: 'Sports', price: [10, 1200], nouns: ['Yoga Mat', 'Dumbbell Set', 'Kettlebell', 'Rowing Machine', 'Resistance Bands'] },
  { id: 'fiction', name: 'Fiction', department: 'Books', price: [7, 35], nouns: ['Novel', 'Short Stories', 'Thriller', 'Fantasy Saga'] },
  { id: 'non-fiction', name: 'Non-fiction', department: 'Books', price: [9, 60], nouns: ['Cookbook', 'Biography', 'History', 'Field Guide'] },
  { id: 'childrens-books', name: "Children's books", department: 'Books', price: [5, 30], nouns: ['Picture Book', 'Activity Book', 'Bedtime Stories'] },
  { id: 'womens-clothing', name: "Women's clothing", department: 'Clothing', price: [12, 350], nouns: ['Dress', 'Blouse', 'Jeans', 'Coat', 'Sweater'] },
  { id: 'mens-clothing', name: "Men's clothing", department: 'Clothing', price: [12, 350], nouns: ['Shirt', 'Chinos', 'Jacket', 'Hoodie', 'Sweater'] },
  { id: 'shoes', name: 'Shoes', department: 'Clothing', price: [35, 280], nouns: ['Sneakers', 'Boots', 'Loafers', 'Sandals'] },
  { id: 'toys', name: 'Toys', department: 'Kids', price: [6, 180], nouns: ['Building Set', 'Puzzle', 'Plush Toy', 'Board Game', 'Wooden Train'] },
];

const BRANDS: Readonly<Record<string, readonly string[]>> = {
  Electronics: ['Voltra', 'Nordlicht', 'Kairo', 'Pixelwerk', 'Sonique', 'Arcadia Labs'],
  Home: ['Hearthly', 'Casa Viva', 'Lindqvist', 'Oakhaven', 'Lumen & Co'],
  Sports: ['Stridewell', 'Peakline', 'Velocita', 'Trailborn', 'Kinetix'],
  Books: ['Harbor Press', 'Quillstone', 'Bluefield Books', 'Marigold Editions'],
  Clothing: ['Atelier Nove', 'Fieldwear', 'Maren', 'Urbane Thread', 'Solstice'],
  Kids: ['Tumble & Toot', 'Brightblocks', 'Wonderkin'],
};

/** Product-line words, as catalogues use them (faker's adjectives give "Tasty Office Chair"). */
const PRODUCT_LINES = [
  'Classic', 'Compact', 'Premium', 'Essential', 'Pro', 'Ultra', 'Lite', 'Everyday', 'Signature', 'Eco',
  'Studio', 'Travel', 'Urban', 'Heritage', 'Active', 'Nordic', 'Prime', 'Select', 'Flex', 'Air',
] as const;

const SEGMENTS = [
  ['CONSUMER', 80],
  ['SMALL_BUSINESS', 15],
  ['ENTERPRISE', 5],
] as const;

const CHANNELS = [
  ['WEB', 58],
  ['MOBILE_APP', 30],
  ['STORE', 12],
] as const;

const PAYMENT_METHODS = [
  ['CARD', 58],
  ['BANK_TRANSFER', 18],
  ['PAYPAL', 17],
  ['GIFT_CARD', 7],
] as const;

const DISCOUNTS = [
  [0, 74],
  [50, 9],
  [100, 8],
  [150, 4],
  [200, 3],
  [250, 2],
] as const; // in thousandths

/** A fixed-column CSV file written as a stream. */
class CsvFile {
  readonly #stringifier;
  readonly #done: Promise<void>;
  rows = 0;

  constructor(path: string, columns: readonly string[]) {
    const out = createWriteStream(path);
    // Booleans as words: csv-stringify's default writes false as an empty field, which loads as NULL.
    this.#stringifier = stringify({
      header: true,
      columns: [...columns],
      cast: { boolean: (value) => (value ? 'true' : 'false') },
    });
    this.#stringifier.pipe(out);
    this.#done = finished(out);
  }

  write(row: readonly (string | number | boolean | null)[]): void {
    this.rows += 1;
    this.#stringifier.write(row.map((value) => (value === null ? '' : value)));
  }

  /** Waits while the file is behind, so memory stays flat at any scale (stream backpressure). */
  async drained(): Promise<void> {
    if (this.#stringifier.writableNeedDrain) await once(this.#stringifier, 'drain');
  }

  async close(): Promise<number> {
    this.#stringifier.end();
    await this.#done;
    return this.rows;
  }
}

/** Weighted choice over a fixed table, by binary search on the cumulative weights. */
class WeightedTable<T> {
  readonly #items: readonly T[];
  readonly #cumulative: Float64Array;

  constructor(items: readonly T[], weights: readonly number[]) {
    this.#items = items;
    this.#cumulative = new Float64Array(weights.length);
    let total = 0;
    weights.forEach((weight, i) => {
      total += weight;
      this.#cumulative[i] = total;
    });
  }

  pick(u: number): T {
    const target = u * this.#cumulative[this.#cumulative.length - 1]!;
    let lo = 0;
    let hi = this.#cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#cumulative[mid]! < target) lo = mid + 1;
      else hi = mid;
    }
    return this.#items[lo]!;
  }
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function isoTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

function money(cents: number): string {
  return (cents / 100).toFixed(2);
}

/** Net amount of a line in cents, rounded half up: the ingestion's ROUND(q * p * (1 - d), 2). */
export function lineNetCents(quantity: number, unitPriceCents: number, discountMilli: number): number {
  return Math.floor((quantity * unitPriceCents * (1000 - discountMilli) + 500) / 1000);
}

interface GeneratedCustomer {
  readonly id: string;
  readonly signupMs: number;
  readonly segment: string;
  readonly region: string;
}

interface GeneratedProduct {
  readonly sku: string;
  readonly categoryId: string;
  readonly priceCents: number;
  readonly launchMs: number;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

export async function generateSourceData(options: GenerateOptions): Promise<RawManifest> {
  const scale = options.scale ?? 1;
  const seed = options.seed ?? DEFAULT_SEED;
  if (!(scale > 0) || !Number.isFinite(scale)) throw new Error(`scale must be a positive number, got ${scale}`);

  const customerCount = Math.max(10, Math.round(10_000 * scale));
  const productCount = Math.max(CATEGORIES.length, Math.round(1_000 * scale));
  const orderCount = Math.max(20, Math.round(100_000 * scale));

  // Written beside the target and renamed into place at the end: a crash never leaves half a data set.
  const staging = `${options.rawDir}.staging-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  for (const domain of ['customers', 'products', 'finance']) await mkdir(join(staging, domain), { recursive: true });

  const rng = new Faker({ locale: [en, base], seed });
  const u = () => rng.number.float();
  const localFakers = new Map(
    COUNTRIES.map((country, i) => [country.code, new Faker({ locale: [country.locale, en, base], seed: seed + 1 + i })]),
  );
  const countryTable = new WeightedTable(COUNTRIES, COUNTRIES.map((c) => c.weight));
  const segmentTable = new WeightedTable(SEGMENTS.map(([s]) => s), SEGMENTS.map(([, w]) => w));

  // --- customers -------------------------------------------------------------------------------
  const customersCsv = new CsvFile(join(staging, 'customers', 'customers.csv'), [
    'id', 'name', 'email', 'phone', 'birth_date', 'country', 'region', 'segment', 'signup_date',
  ]);
  const addressesCsv = new CsvFile(join(staging, 'customers', 'addresses.csv'), [
    'id', 'customer_id', 'kind', 'line1', 'city', 'postal_code', 'country', 'is_primary',
  ]);
  const customers: GeneratedCustomer[] = [];
  const emails = new Set<string>();
  const signupStart = Date.UTC(2019, 0, 1);
  let addressSeq = 0;
  for (let i = 1; i <= customerCount; i++) {
    const country = countryTable.pick(u());
    const local = localFakers.get(country.code)!;
    const firstName = local.person.firstName();
    const lastName = local.person.lastName();
    const name = country.romanizedEmail ? `${lastName} ${firstName}` : `${firstName} ${lastName}`;
    let email = (country.romanizedEmail ? rng.internet.email() : local.internet.email({ firstName, lastName }))
      .toLowerCase();
    if (emails.has(email)) email = email.replace('@', `.${i}@`);
    emails.add(email);
    const segment = segmentTable.pick(u());
    // More sign-ups in recent years: the customer base grows.
    const signupMs = signupStart + Math.floor(Math.pow(u(), 0.75) * (PERIOD_END - signupStart - 30 * DAY));
    const ageYears = 18 + Math.floor(Math.pow(u(), 1.4) * 67);
    const birthMs = PERIOD_END - ageYears * 365.25 * DAY - Math.floor(u() * 365) * DAY;
    const id = `C${pad(i, 7)}`;
    customersCsv.write([
      id, name, email, local.phone.number({ style: 'international' }), isoDate(birthMs), country.code,
      country.region, segment, isoDate(signupMs),
    ]);
    customers.push({ id, signupMs, segment, region: country.region });
    if (i % 1000 === 0) await Promise.all([customersCsv.drained(), addressesCsv.drained()]);

    const addressCount = 1 + (u() < 0.55 ? 1 : 0) + (u() < 0.12 ? 1 : 0);
    for (let a = 0; a < addressCount; a++) {
      addressSeq += 1;
      addressesCsv.write([
        `A${pad(addressSeq, 8)}`, id, a === 0 ? 'BILLING' : 'SHIPPING', local.location.streetAddress(),
        local.location.city(), local.location.zipCode(), country.code, a <= 1,
      ]);
    }
  }

  // --- products --------------------------------------------------------------------------------
  const categoriesCsv = new CsvFile(join(staging, 'products', 'categories.csv'), ['id', 'name', 'department']);
  for (const category of CATEGORIES) categoriesCsv.write([category.id, category.name, category.department]);
  const productsCsv = new CsvFile(join(staging, 'products', 'products.csv'), [
    'sku', 'name', 'category_id', 'brand', 'list_price', 'unit_cost', 'launch_date',
  ]);
  const products: GeneratedProduct[] = [];
  const launchStart = Date.UTC(2018, 0, 1);
  const launchEnd = Date.UTC(2025, 8, 30);
  for (let i = 1; i <= productCount; i++) {
    // Every category has products, then categories fill up at random.
    const category = i <= CATEGORIES.length ? CATEGORIES[i - 1]! : rng.helpers.arrayElement(CATEGORIES);
    const brand = rng.helpers.arrayElement(BRANDS[category.department]!);
    const [low, high] = category.price;
    const price = Math.exp(Math.log(low) + u() * (Math.log(high) - Math.log(low)));
    const priceCents = Math.max(99, Math.round(price) * 100 - 1); // x.99 prices
    const costCents = Math.round(priceCents * (0.35 + u() * 0.4));
    const launchMs = launchStart + Math.floor(u() * ((launchEnd - launchStart) / DAY)) * DAY;
    const sku = `SKU-${pad(10_000 + i, 6)}`;
    const noun = rng.helpers.arrayElement(category.nouns);
    const model = category.models ? ` ${rng.string.alpha({ length: 1, casing: 'upper' })}${rng.number.int({ min: 1, max: 99 })}` : '';
    const name = `${brand} ${rng.helpers.arrayElement(PRODUCT_LINES)} ${noun}${model}`;
    productsCsv.write([sku, name, category.id, brand, money(priceCents), money(costCents), isoDate(launchMs)]);
    products.push({ sku, categoryId: category.id, priceCents, launchMs });
  }

  // --- finance ---------------------------------------------------------------------------------
  // Heavy tails: a Pareto weight per customer (enterprises buy more), Zipf popularity per product.
  const buyerTable = new WeightedTable(
    customers,
    customers.map((c) => Math.pow(1 - u(), -1 / 1.3) * (c.segment === 'ENTERPRISE' ? 3 : 1)),
  );
  const popularityRank = rng.helpers.shuffle(products.map((_, i) => i));
  const productTable = new WeightedTable(
    products,
    products.map((_, i) => 1 / Math.pow(popularityRank[i]! + 1, 1.07)),
  );
  const earliestProduct = products.reduce((a, b) => (b.launchMs < a.launchMs ? b : a));
  const channelTable = new WeightedTable(CHANNELS.map(([c]) => c), CHANNELS.map(([, w]) => w));
  const methodTable = new WeightedTable(PAYMENT_METHODS.map(([m]) => m), PAYMENT_METHODS.map(([, w]) => w));
  const discountTable = new WeightedTable(DISCOUNTS.map(([d]) => d), DISCOUNTS.map(([, w]) => w));
  // Seasonality: a busy November and December, a quiet start of the year.
  const monthWeight = [0.8, 0.75, 0.9, 0.95, 1, 0.95, 0.9, 0.95, 1, 1.05, 1.45, 1.6];

  const ordersCsv = new CsvFile(join(staging, 'finance', 'orders.csv'), [
    'id', 'customer_id', 'ordered_at', 'status', 'channel', 'region',
  ]);
  const linesCsv = new CsvFile(join(staging, 'finance', 'order_lines.csv'), [
    // The order management system books each line with the product's category at the time of sale.
    'order_id', 'line_number', 'sku', 'category_id', 'quantity', 'unit_price', 'discount',
  ]);
  const invoicesCsv = new CsvFile(join(staging, 'finance', 'invoices.csv'), [
    'id', 'order_id', 'issued_on', 'due_on', 'amount', 'status',
  ]);
  const paymentsCsv = new CsvFile(join(staging, 'finance', 'payments.csv'), [
    'id', 'invoice_id', 'paid_at', 'amount', 'method',
  ]);
  let paymentSeq = 0;
  for (let i = 1; i <= orderCount; i++) {
    if (i % 1000 === 0) {
      await Promise.all([ordersCsv.drained(), linesCsv.drained(), invoicesCsv.drained(), paymentsCsv.drained()]);
    }
    const customer = buyerTable.pick(u());
    const from = Math.max(PERIOD_START, customer.signupMs);
    let orderedMs = from + Math.floor(u() * (PERIOD_END - from));
    for (let tries = 0; tries < 4 && u() * 1.6 > monthWeight[new Date(orderedMs).getUTCMonth()]!; tries++) {
      orderedMs = from + Math.floor(u() * (PERIOD_END - from));
    }
    const ageDays = (PERIOD_END - orderedMs) / DAY;
    let status: string;
    if (ageDays < 2) status = u() < 0.5 ? 'PENDING' : 'PAID';
    else if (ageDays < 7) status = 'SHIPPED';
    else {
      const r = u();
      status = r < 0.04 ? 'CANCELLED' : r < 0.09 ? 'RETURNED' : 'DELIVERED';
    }
    const orderId = `O${pad(i, 8)}`;
    // The sales region the order is booked in: the customer's.
    ordersCsv.write([orderId, customer.id, isoTimestamp(orderedMs), status, channelTable.pick(u()), customer.region]);

    let lineCount = 1;
    while (lineCount < 8 && u() < 0.6) lineCount++;
    const chosen = new Set<string>();
    let totalCents = 0;
    for (let line = 1; line <= lineCount; line++) {
      let product = productTable.pick(u());
      for (let tries = 0; tries < 10 && (product.launchMs > orderedMs || chosen.has(product.sku)); tries++) {
        product = productTable.pick(u());
      }
      if (product.launchMs > orderedMs) product = earliestProduct;
      if (chosen.has(product.sku)) continue;
      chosen.add(product.sku);
      const q = u();
      let quantity = q < 0.7 ? 1 : q < 0.88 ? 2 : q < 0.95 ? 3 : 4 + Math.floor(u() * 7);
      if (customer.segment === 'ENTERPRISE' && u() < 0.4) quantity *= 5;
      const discount = discountTable.pick(u());
      totalCents += lineNetCents(quantity, product.priceCents, discount);
      linesCsv.write([orderId, chosen.size, product.sku, product.categoryId, quantity, money(product.priceCents), (discount / 1000).toFixed(3)]);
    }

    if (status === 'CANCELLED' || status === 'PENDING') continue;
    const invoiceId = `INV-${pad(i, 8)}`;
    const issuedMs = orderedMs - (orderedMs % DAY);
    const dueMs = issuedMs + 30 * DAY;
    let invoiceStatus: string;
    if (status === 'RETURNED') invoiceStatus = 'VOID';
    else if (u() < 0.03 || issuedMs + 20 * DAY > PERIOD_END) invoiceStatus = dueMs < PERIOD_END ? 'OVERDUE' : 'OPEN';
    else invoiceStatus = 'PAID';
    invoicesCsv.write([invoiceId, orderId, isoDate(issuedMs), isoDate(dueMs), money(totalCents), invoiceStatus]);
    if (invoiceStatus !== 'PAID' && invoiceStatus !== 'VOID') continue;
    // Paid (and later refunded) invoices: one payment, or a deposit and the rest.
    const parts = u() < 0.1 && totalCents >= 200 ? 2 : 1;
    const first = parts === 2 ? Math.round(totalCents * 0.3) : totalCents;
    for (let p = 0; p < parts; p++) {
      paymentSeq += 1;
      const paidMs = Math.min(PERIOD_END, orderedMs + Math.floor(u() * (p + 1) * 12 * DAY));
      paymentsCsv.write([
        `PAY-${pad(paymentSeq, 8)}`, invoiceId, isoTimestamp(paidMs), money(p === 0 ? first : totalCents - first),
        methodTable.pick(u()),
      ]);
    }
  }

  const rows: Record<string, number> = {
    'customers/customers': await customersCsv.close(),
    'customers/addresses': await addressesCsv.close(),
    'products/categories': await categoriesCsv.close(),
    'products/products': await productsCsv.close(),
    'finance/orders': await ordersCsv.close(),
    'finance/order_lines': await linesCsv.close(),
    'finance/invoices': await invoicesCsv.close(),
    'finance/payments': await paymentsCsv.close(),
  };
  const manifest: RawManifest = { generatorVersion: GENERATOR_VERSION, seed, scale, fingerprint: fingerprintOf(seed, scale), rows, extractedAt: new Date(PERIOD_END).toISOString() };
  await writeFile(join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await rm(options.rawDir, { recursive: true, force: true });
  await rename(staging, options.rawDir);
  return manifest;
}
