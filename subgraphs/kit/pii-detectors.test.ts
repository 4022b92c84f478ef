/**
 * The personal data detectors on values no generator of this project made: real people's names,
 * published test card numbers and IBANs, documented id formats; and on what must not look
 * personal: codes, amounts, places, products, dates of events.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_DISCOVERY_RULES } from '../../policy/discovery.js';
import { detectPersonalData } from './pii-detectors.js';

const now = new Date('2026-12-02T00:00:00Z');
const detect = (values: readonly string[]) => detectPersonalData(values, { now });
const shareOf = (values: readonly string[], detector: string) => detect(values).find((found) => found.detector === detector)?.share ?? 0;

describe('the personal data detectors', () => {
  it.each([
    ['email', ['ada.lovelace@example.org', 'g.hopper@navy.mil', 'info+news@example.co.uk', 'jose.saramago@correio.pt', 'w.maathai@greenbelt.or.ke']],
    ['phone', ['+44 20 7946 0958', '+1 415 555 2671', '+49 30 901820', '+33 1 42 68 53 00', '+81 3-1234-5678', '+91 98765 43210', '(212) 736-5000', '650-253-0000']],
    ['paymentCard', ['4111 1111 1111 1111', '5500-0000-0000-0004', '3400 000000 00009', '6011000000000004', '4012888888881881']],
    ['iban', ['DE89 3704 0044 0532 0130 00', 'GB82 WEST 1234 5698 7654 32', 'FR14 2004 1010 0505 0001 3M02 606', 'NL91ABNA0417164300', 'ES9121000418450200051332']],
    ['nationalId', ['536-22-8726', '078-05-1120', 'AB 12 34 56 C', 'JG103759A', '12345678Z', '131052-308T', '11010519491231002X']],
    ['birthDate', ['1942-07-08', '1956-03-14', '1963-11-30', '1971-01-02', '1984-06-21', '1990-09-09', '1999-12-31', '2004-04-04']],
  ])('recognises every value of a column of %s', (detector, values) => {
    expect(detect(values)[0]).toEqual({ detector, share: 1 });
  });

  it('recognises most real people\'s names, in Latin and East Asian scripts, above the governance threshold', () => {
    const names = [
      'Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Ngozi Okonjo-Iweala', 'José Saramago', 'Wangari Maathai', 'Chimamanda Ngozi Adichie',
      'Ludwig van Beethoven', 'Frida Kahlo', 'Srinivasa Ramanujan', 'Marie Curie', 'Nelson Mandela', 'Greta Thunberg', 'Olaf Scholz',
      'Angela Merkel', 'Kofi Annan', 'Ai Weiwei', 'Haruki Murakami', 'Lech Wałęsa', 'Søren Kierkegaard', '村上 春樹', '김 연아',
    ];
    expect(shareOf(names, 'personName')).toBeGreaterThanOrEqual(0.7);
    expect(shareOf(names, 'personName')).toBeGreaterThanOrEqual(DEFAULT_DISCOVERY_RULES.minimumShare);
  });

  it('finds no personal data in codes, amounts, statuses and postal codes', () => {
    const codes = ['SKU-010001', 'O00000001', 'INV-00000001', 'PAY-00000001', 'C0000001', 'DELIVERED', 'SMALL_BUSINESS', 'US', 'EMEA', '12.99', '2316.99', 'SW1A 1AA', '10115', '75008', '94103-1234', 'laptops', 'mens-clothing', '4111 1111 1111 1112'];
    expect(detect(codes)).toEqual([]);
  });

  it('tells the dates of events (a few years) from birth dates (decades)', () => {
    const orders = Array.from({ length: 60 }, (_, i) => new Date(Date.UTC(2021, 0, 1) + i * 30 * 86_400_000).toISOString().slice(0, 10));
    expect(detect(orders)).toEqual([]);
    // Dates in the future or less than a year ago are no births, whatever the span.
    expect(shareOf(['1950-01-01', '2026-06-01', '2030-01-01', '1980-05-05'], 'birthDate')).toBe(0.5);
  });

  it('keeps places, organisations and product names below the threshold', () => {
    const places = ['San Francisco', 'New York', 'Los Angeles', 'Rio de Janeiro', 'Buenos Aires', 'Kuala Lumpur', 'Port Elizabeth', 'Saint Petersburg', 'Mexico City', 'Cape Town', 'Hong Kong', 'Tel Aviv', 'Santa Monica', 'Las Vegas', 'El Paso', 'Victoria Station', 'Main Street', 'Baker Street', 'Abbey Road', 'Sunset Boulevard'];
    const things = ['Oakhaven Heritage Sofa', 'Harbor Press Field Guide', 'Bluefield Books', 'Premium Service', 'Customer Support', 'United Kingdom', 'Order Pending', 'Hello World', 'Lumen & Co', 'Summer Sale', 'Grace Period', 'Classic Office Chair', 'Stainless Steel Kettle', 'Wireless Earbuds Pro', 'Trail Running Shoes', 'Board Game Night', 'Picture Book', 'Dutch Oven', 'Coffee Grinder', 'Standing Desk'];
    expect(shareOf(places, 'personName')).toBeLessThan(0.2);
    expect(shareOf(things, 'personName')).toBeLessThan(0.2);
  });

  it('gives shares of the sample, strongest first, and nothing for an empty sample', () => {
    expect(detect([])).toEqual([]);
    expect(detect(['ada@example.org', 'grace@example.org', 'not an address', '+44 20 7946 0958'])).toEqual([
      { detector: 'email', share: 0.5 },
      { detector: 'phone', share: 0.25 },
    ]);
  });
});
