// The test fixture (a fresh gateway per test) and the steps the specs share: a contact on a phone,
// a counsellor at the console, a supervisor at the dashboard, axe-core, screenshots.
import { test as base, expect } from '@playwright/test';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { startGateway, PASSWORD, ROOT } from './processes.js';

export { expect };

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
/** The README's screenshots are replaced only on request (UPDATE_SCREENSHOTS=1), so an ordinary
 * run leaves the work tree clean; otherwise they go with the other test output. */
export const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS
  ? resolve(ROOT, 'docs/screenshots')
  : resolve(ROOT, 'tests/pw/test-results/screenshots');

export const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
export const DESKTOP = { viewport: { width: 1280, height: 860 } };

export const test = base.extend({
  /** Extra HELPLINE_… settings for this test's gateway. */
  gwSettings: [{}, { option: true }],
  gw: async ({ gwSettings }, use) => {
    const gw = await startGateway(gwSettings);
    try {
      await use(gw);
    } finally {
      await gw.stop();
    }
  },
});

/** Fails the test on any uncaught error or any CSP violation in `page`. */
export function watchErrors(page, errors = []) {
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) errors.push(`csp: ${m.text()}`);
  });
  return errors;
}

/** A contact on a phone, on the chat page, in `locale`. */
export async function openContact(browser, gw, { locale = 'ro-RO', ...options } = {}) {
  const context = await browser.newContext({ ...PHONE, locale, ...options });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${gw.url}/`);
  return { context, page, errors };
}

/** Starts a chat from the intro (optionally with a topic) and waits for the queue position. */
export async function startChat(page, { topic } = {}) {
  if (topic) await page.locator('#topic').selectOption(topic);
  await page.locator('#start').click();
  await expect(page.locator('#chat')).toBeVisible();
}

/** A contact sends a message and waits until the gateway acknowledged it. */
export async function contactSays(page, text) {
  await page.locator('#text').fill(text);
  await page.locator('#composer button[type="submit"]').click();
  await expect(page.locator('#log li.from-contact').filter({ hasText: text }).last()).toHaveAttribute('data-id', /\d+-\d+/);
}

/** Logs a staff member into `path` (/console or /supervisor) in a fresh desktop context. */
export async function openStaff(browser, gw, username, path = '/console', options = {}) {
  const context = await browser.newContext({ ...DESKTOP, ...options });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${gw.url}${path}`);
  await loginAs(page, username);
  return { context, page, errors };
}

export async function loginAs(page, username) {
  await page.locator('#username').fill(username);
  await page.locator('#password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.locator('#login')).toBeHidden();
}

/** The counsellor goes available, waits for an offer and accepts it; returns the conversation id. */
export async function acceptOffer(page) {
  await expect(page.locator('#go-available')).toBeEnabled();
  await page.locator('#go-available').click();
  await expect(page.locator('#go-available')).toHaveAttribute('aria-pressed', 'true');
  const offer = page.locator('#offer-list .offer').first();
  await expect(offer).toBeVisible({ timeout: 15_000 });
  await offer.getByRole('button', { name: 'Accept' }).click();
  await expect(offer).toBeHidden();
  const tab = page.locator('#tabs [role="tab"][aria-selected="true"]');
  await expect(tab).toBeVisible();
  return (await tab.getAttribute('id')).slice(4);
}

/** The visible panel of the selected conversation. */
export function panel(page) {
  return page.locator('.panel:not([hidden])');
}

export async function counsellorSays(page, text) {
  const p = panel(page);
  await p.locator('textarea.compose-text').fill(text);
  await p.getByRole('button', { name: 'Send', exact: true }).click();
  await expect(p.locator('li.from-counsellor').filter({ hasText: text }).last()).toHaveAttribute('data-id', /\d+-\d+/);
}

/** Runs axe-core (WCAG 2.0/2.1 A and AA, and best practices) and returns the serious and critical violations. */
export async function seriousViolations(page) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** Saves a screenshot for the README under docs/screenshots/. */
export async function screenshot(page, name, options = {}) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.mouse.move(0, 0);
  await page.screenshot({ path: resolve(SCREENSHOTS, `${name}.png`), animations: 'disabled', ...options });
}
