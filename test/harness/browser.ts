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

/** The editors of GraphiQL 5 (Monaco), as a user reaches them. */
export const EDITORS = { query: '.graphiql-query-editor .monaco-editor', response: '.result-window .monaco-editor' } as const;

/**
 * Replaces an editor's whole text, as a user would: click into it, select all, paste (typing would
 * get the editor's closing brackets and indentation added). The page's context needs the clipboard permissions.
 */
export async function pasteInto(page: Page, editor: string, text: string): Promise<void> {
  await page.evaluate((value) => (globalThis as any).navigator.clipboard.writeText(value) as Promise<void>, text);
  await page.click(`${editor} .view-lines`);
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('ControlOrMeta+V');
}

/**
 * An editor's whole text, as a user gets it: select all and copy (Monaco renders only the lines in
 * view, and copies from its model). The page's context needs the clipboard permissions.
 */
export async function copyFrom(page: Page, editor: string): Promise<string> {
  await page.click(`${editor} .view-lines`);
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('ControlOrMeta+C');
  return page.evaluate(() => (globalThis as any).navigator.clipboard.readText() as Promise<string>);
}

/** The text every editor of the page shows. */
export function shownInEditors(page: Page): Promise<string[]> {
  return page.locator('.monaco-editor .view-lines').allInnerTexts();
}
