/**
 * Debian's Chromium for browser tests, driven by playwright-core (never a downloaded browser), with
 * nothing but loopback resolvable: a page that reached for a CDN or any other host would fail.
 */
import { chromium, type Browser, type Page } from 'playwright-core';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Nothing but loopback resolves: a CDN reference would fail to load.
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
  });
}

/** How light a CSS colour (`rgb(…)`) is, from 0 (black) to 1 (white). */
export function luminance(rgb: string): number {
  const [r, g, b] = (rgb.match(/\d+/g) ?? []).map(Number);
  return (0.2126 * r! + 0.7152 * g! + 0.0722 * b!) / 255;
}

/** The computed colour (`color` or `backgroundColor`) of the first element a selector finds. */
export function colourOf(page: Page, selector: string, property: 'color' | 'backgroundColor'): Promise<string> {
  return page.evaluate(([css, name]) => (globalThis as any).getComputedStyle((globalThis as any).document.querySelector(css))[name] as string, [selector, property] as const);
}
