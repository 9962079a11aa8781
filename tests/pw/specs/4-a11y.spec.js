// Scenario 4: axe-core (WCAG 2.0 and 2.1, A and AA, and best practices) finds no serious or
// critical problem on any page, in the states a person sees.
import {
  test, expect, openContact, startChat, contactSays, openStaff, acceptOffer, counsellorSays, panel, seriousViolations,
} from '../lib/fixtures.js';

async function noSeriousViolations(page, what) {
  const found = await seriousViolations(page);
  expect(found, `${what}: ${JSON.stringify(found, null, 2)}`).toEqual([]);
}

test('every page passes axe-core with no serious or critical violation', async ({ browser, gw }) => {
  // Ukrainian first, to check those words too; then the chat in Russian, which Ana speaks.
  const child = await openContact(browser, gw, { locale: 'uk-UA' });
  await expect(child.page.locator('html')).toHaveAttribute('lang', 'uk');
  await expect(child.page.getByRole('heading', { level: 1 })).toHaveText('Поговори з тим, хто тебе вислухає');
  await noSeriousViolations(child.page, 'contact intro (uk)');
  await child.page.getByRole('radio', { name: 'Русский' }).check();
  await expect(child.page.locator('html')).toHaveAttribute('lang', 'ru');
  await expect(child.page.getByRole('heading', { level: 1 })).toHaveText('Поговори с тем, кто тебя выслушает');
  await startChat(child.page, { topic: 'feelings' });
  await contactSays(child.page, 'Привет. Мне грустно.');
  await noSeriousViolations(child.page, 'contact waiting');

  const login = await browser.newPage();
  await login.goto(`${gw.url}/console`);
  await expect(login.locator('#username')).toBeVisible();
  await noSeriousViolations(login, 'console login');
  await login.goto(`${gw.url}/supervisor`);
  await expect(login.locator('#username')).toBeVisible();
  await noSeriousViolations(login, 'supervisor login');
  await login.close();

  const ana = await openStaff(browser, gw, 'ana');
  await expect(ana.page.locator('#go-available')).toBeEnabled();
  await noSeriousViolations(ana.page, 'console, no conversation');
  await ana.page.locator('#go-available').click();
  await expect(ana.page.locator('#offer-list .offer')).toBeVisible();
  await noSeriousViolations(ana.page, 'console with an offer');
  await ana.page.locator('#offer-list .offer').getByRole('button', { name: 'Accept' }).click();
  await expect(panel(ana.page)).toBeVisible();
  await counsellorSays(ana.page, 'Привет, я здесь. Что случилось?');
  await noSeriousViolations(ana.page, 'console with a conversation');
  await panel(ana.page).getByRole('button', { name: 'Transfer…' }).click();
  await expect(ana.page.locator('#transfer-dialog')).toBeVisible();
  await noSeriousViolations(ana.page, 'console transfer dialog');
  await ana.page.keyboard.press('Escape');
  await panel(ana.page).getByRole('button', { name: 'Close…' }).click();
  await noSeriousViolations(ana.page, 'console close dialog');
  await ana.page.keyboard.press('Escape');

  await expect(child.page.locator('#log li.from-counsellor')).toBeVisible();
  await noSeriousViolations(child.page, 'contact chatting');

  const sup = await openStaff(browser, gw, 'maria', '/supervisor');
  await expect(sup.page.locator('#live-table tbody tr[data-key]')).toHaveCount(1);
  await sup.page.locator('#live-table').getByRole('button', { name: 'Monitor' }).click();
  await expect(sup.page.locator('#monitor li')).not.toHaveCount(0);
  await noSeriousViolations(sup.page, 'supervisor dashboard, monitoring');

  // An ended chat, for the child.
  await child.page.getByRole('button', { name: 'Завершить чат' }).click();
  await child.page.getByRole('button', { name: 'Да, завершить' }).click();
  await expect(child.page.locator('#ended')).toBeVisible();
  await noSeriousViolations(child.page, 'contact, chat ended');
});
