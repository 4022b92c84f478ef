/**
 * Detectors of personal data in a column's values, for the profiles of each load (profiles.ts).
 * Each says what share of a sample of the column's non-null values it recognises:
 *
 * - `email`: addresses validator.js accepts (`isEmail`);
 * - `phone`: numbers in international form (`+` and a country code) that libphonenumber-js finds
 *   possible, and national numbers it finds valid for the United States;
 * - `paymentCard`: card numbers of a known issuer with a valid Luhn check digit (`isCreditCard`);
 * - `iban`: IBANs with a valid country length and mod-97 check (`isIBAN`), spaces allowed;
 * - `nationalId`: US social security numbers (`123-45-6789`, without the numbers the SSA never
 *   issues), UK national insurance numbers, and the identity numbers with a check character that
 *   validator.js knows (Spain's DNI/NIE, Finland's henkilötunnus, China's resident id, …);
 * - `birthDate`: dates (date columns, or ISO dates in text) between 120 and 1 years before the load,
 *   in a column whose sample spans 15 years or more: dates of events (orders, sign-ups, launches)
 *   span a few years, people's births span decades;
 * - `personName`: two to five capitalised words without digits whose first is a given name, from
 *   the given names of every locale faker knows (~24,000, in Latin and other scripts), and none of
 *   which marks a place or an organisation (`Street`, `Santa`, `Station`, `Inc`, …); and names in
 *   Chinese, Japanese or Korean script written family name, space, given name.
 *
 * Detectors run on text and date columns; numbers stored in number columns are not looked at.
 */
import { allLocales } from '@faker-js/faker';
import { isPossiblePhoneNumber, isValidPhoneNumber } from 'libphonenumber-js';
import validator from 'validator';
import { DETECTORS, type Detection, type Detector } from '../../policy/discovery.js';

const YEAR_MS = 365.25 * 86_400_000;

/** A value with only the characters phone numbers are written with, and 7 to 15 digits. */
const PHONE_SHAPE = /^\+?[\d\s().-]+$/;
const digitsIn = (value: string) => value.replace(/\D/g, '').length;

function isPhone(value: string): boolean {
  if (!PHONE_SHAPE.test(value)) return false;
  const digits = digitsIn(value);
  if (digits < 7 || digits > 15) return false;
  return value.startsWith('+') ? isPossiblePhoneNumber(value) : isValidPhoneNumber(value, 'US');
}

/** SSNs as the SSA issues them: area not 000, 666 or 9xx; group not 00; serial not 0000. */
const SSN = /^(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}$/;
/** UK national insurance numbers (the HMRC's prefix rules). */
const NINO = /^(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]$/i;
/** validator.js's identity numbers that carry letters or a check character (all-digit ones match too many ids by chance). */
const ID_CARD_LOCALES = ['ES', 'FI', 'IT', 'zh-CN', 'zh-TW', 'he-IL'] as const;

function isNationalId(value: string): boolean {
  if (SSN.test(value) || NINO.test(value)) return true;
  return ID_CARD_LOCALES.some((locale) => {
    try {
      return validator.isIdentityCard(value, locale);
    } catch {
      return false;
    }
  });
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

function dateOf(value: string): number | null {
  const match = ISO_DATE.exec(value);
  if (!match) return null;
  const time = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  return Number.isNaN(time) ? null : time;
}

let givenNames: ReadonlySet<string> | undefined;

/** Every given name of every locale faker defines, lower-cased (built once, on first use). */
function givenNamesOf(): ReadonlySet<string> {
  if (givenNames) return givenNames;
  const names = new Set<string>();
  for (const locale of Object.values(allLocales)) {
    const firstNames = (locale as { person?: { first_name?: readonly string[] | Readonly<Record<string, readonly string[]>> } }).person?.first_name;
    if (!firstNames) continue;
    for (const list of Array.isArray(firstNames) ? [firstNames] : Object.values(firstNames)) for (const name of list) names.add(name.toLowerCase());
  }
  givenNames = names;
  return names;
}

const NAME_WORD = /^\p{Lu}[\p{L}'’.-]*$/u;
/** Lower-case words inside names: nobiliary and family particles. */
const PARTICLES = new Set(['van', 'von', 'de', 'der', 'den', 'da', 'di', 'del', 'della', 'des', 'du', 'la', 'le', 'el', 'al', 'bin', 'ibn', 'ter', 'ten', 'dos', 'das', 'do', 'y', 'e']);
/** Words that make a capitalised phrase a place or an organisation rather than a person (`Santa Monica`, `Victoria Station`, `Bluefield Books`). */
const NOT_A_PERSON = new Set([
  'street', 'st.', 'road', 'rd.', 'avenue', 'ave', 'ave.', 'lane', 'drive', 'boulevard', 'way', 'station', 'city', 'town', 'village', 'park', 'square',
  'place', 'bay', 'beach', 'lake', 'river', 'mount', 'port', 'saint', 'santa', 'san', 'sankt', 'north', 'south', 'east', 'west', 'new', 'old',
  'inc', 'inc.', 'ltd', 'ltd.', 'llc', 'gmbh', 'co', 'co.', 'corp', 'corp.', 'company', 'group', 'press', 'books', 'bank', 'university', 'college',
  'school', 'hospital', 'hotel', 'airport', 'center', 'centre', 'service', 'support', 'sale', 'period',
]);
const CJK_NAME = /^\p{Script=Han}{1,2} [\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]{1,3}$|^\p{Script=Hangul}{1,2} \p{Script=Hangul}{1,3}$/u;

function isPersonName(value: string): boolean {
  if (CJK_NAME.test(value)) return true;
  const words = value.trim().split(/\s+/);
  if (words.length < 2 || words.length > 5) return false;
  const inner = (i: number) => i > 0 && i < words.length - 1;
  if (!words.every((word, i) => NAME_WORD.test(word) || (inner(i) && PARTICLES.has(word)))) return false;
  if (words.some((word) => NOT_A_PERSON.has(word.toLowerCase()))) return false;
  const names = givenNamesOf();
  const first = words[0]!.toLowerCase();
  return names.has(first) || first.split('-').every((part) => names.has(part));
}

/** The text detectors, one value at a time. */
const TEXT_DETECTORS: Readonly<Record<Exclude<Detector, 'birthDate'>, (value: string) => boolean>> = {
  email: (value) => value.includes('@') && validator.isEmail(value),
  phone: isPhone,
  paymentCard: (value) => /^[\d -]{12,23}$/.test(value) && validator.isCreditCard(value),
  iban: (value) => /^[A-Z]{2}\d{2}[A-Z\d ]{10,36}$/i.test(value) && validator.isIBAN(value.replace(/ /g, '').toUpperCase()),
  nationalId: isNationalId,
  personName: isPersonName,
};

const TEXT_DETECTOR_LIST = Object.entries(TEXT_DETECTORS) as [Exclude<Detector, 'birthDate'>, (value: string) => boolean][];

export interface DetectOptions {
  /** The load's clock: birth dates are dated against it. */
  readonly now: Date;
}

/**
 * What share of `values` (non-null values of one column, as text: dates as `YYYY-MM-DD`) each
 * detector recognises; only detectors that recognise at least one, strongest first.
 */
export function detectPersonalData(values: readonly string[], options: DetectOptions): Detection[] {
  if (values.length === 0) return [];
  const counts = new Map<Detector, number>();
  const count = (detector: Detector) => counts.set(detector, (counts.get(detector) ?? 0) + 1);
  const now = options.now.getTime();
  let earliest = Infinity;
  let latest = -Infinity;
  let plausibleBirths = 0;
  for (const raw of values) {
    const value = raw.trim();
    if (value === '') continue;
    const date = dateOf(value);
    if (date !== null) {
      earliest = Math.min(earliest, date);
      latest = Math.max(latest, date);
      if (date <= now - YEAR_MS && date >= now - 120 * YEAR_MS) plausibleBirths += 1;
      continue; // a date is none of the other things
    }
    for (const [detector, recognises] of TEXT_DETECTOR_LIST) {
      if (recognises(value)) count(detector);
    }
  }
  if (plausibleBirths > 0 && latest - earliest >= 15 * YEAR_MS) counts.set('birthDate', plausibleBirths);
  return DETECTORS.filter((detector) => counts.has(detector))
    .map((detector) => ({ detector, share: Math.round((counts.get(detector)! / values.length) * 1000) / 1000 }))
    .sort((a, b) => b.share - a.share);
}
