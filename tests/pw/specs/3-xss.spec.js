// Scenario 3: hostile text from a contact is shown as text in the console and the dashboard (and
// back on the contact's page), and nothing runs. The staff pages run here with their CSP turned off
// (bypassCSP), so only the text-only rendering stands between the payloads and the page.
import {
  test, expect, openContact, startChat, contactSays, openStaff, acceptOffer, counsellorSays, panel,
} from '../lib/fixtures.js';

const PAYLOADS = [
  '<script>window.__xss = "script"</script>',
  '<img src=x onerror="window.__xss=\'img\'">',
  '<svg onload="window.__xss=\'svg\'"><circle r="40"/></svg>',
  '<a href="javascript:window.__xss=\'href\'">click me</a>',
  'javascript:window.__xss="url"',
  '<iframe src="javascript:window.__xss=\'iframe\'"></iframe>',
  '"><details open ontoggle="window.__xss=\'details\'">',
  '${window.__xss="template"}',
  '{{constructor.constructor("window.__xss=\'angular\'")()}}',
  '</textarea><script>window.__xss="textarea"</script>',
  '<style>body{display:none}</style>',
  '&lt;b&gt;entity&lt;/b&gt; &amp; <b>bold</b>',
  '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
];
const ELEMENTS = 'script, img, svg, iframe, a, details, style, b, math, table';

/** Records (and dismisses) any alert, confirm or prompt a payload might open. */
function armed(page, dialogs) {
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    d.dismiss();
  });
}

test('hostile messages render as text and execute nothing', async ({ browser, gw }) => {
  const child = await openContact(browser, gw, { bypassCSP: true });
  const ana = await openStaff(browser, gw, 'ana', '/console', { bypassCSP: true });
  const sup = await openStaff(browser, gw, 'maria', '/supervisor', { bypassCSP: true });
  const dialogs = [];
  for (const page of [child.page, ana.page, sup.page]) armed(page, dialogs);

  await startChat(child.page);
  const conversation = await acceptOffer(ana.page);
  for (const payload of PAYLOADS) await contactSays(child.page, payload);

  // The counsellor sees each payload once, as exactly that text.
  const contactTexts = panel(ana.page).locator('li.from-contact .text');
  await expect(contactTexts).toHaveCount(PAYLOADS.length);
  expect(await contactTexts.allTextContents()).toEqual(PAYLOADS);
  expect(await panel(ana.page).locator('.log').locator(ELEMENTS).count()).toBe(0);

  // The counsellor sends them back: the contact's page shows them as text too.
  for (const payload of PAYLOADS.slice(0, 4)) await counsellorSays(ana.page, payload);
  const back = child.page.locator('#log li.from-counsellor .text');
  await expect(back).toHaveCount(4);
  expect(await back.allTextContents()).toEqual(PAYLOADS.slice(0, 4));
  expect(await child.page.locator('#log').locator(ELEMENTS).count()).toBe(0);

  // The supervisor monitors the conversation: the transcript is text; a hostile whisper too.
  const row = sup.page.locator(`#live-table tr[data-key="${conversation}"]`);
  await row.getByRole('button', { name: 'Monitor' }).click();
  const monitored = sup.page.locator('#monitor li.from-contact .text');
  await expect(monitored).toHaveCount(PAYLOADS.length);
  expect(await monitored.allTextContents()).toEqual(PAYLOADS);
  await sup.page.locator('#whisper-text').fill(PAYLOADS[1]);
  await sup.page.getByRole('button', { name: 'Whisper' }).click();
  await expect(panel(ana.page).locator('li.whisper .text')).toHaveText(PAYLOADS[1]);
  expect(await sup.page.locator('#monitor').locator(ELEMENTS).count()).toBe(0);

  // Nothing ran anywhere, and nothing was hidden by injected styles.
  await ana.page.waitForTimeout(500);
  for (const page of [child.page, ana.page, sup.page]) {
    expect(await page.evaluate(() => window.__xss)).toBeUndefined();
    await expect(page.locator('body')).toBeVisible();
  }
  expect(dialogs).toEqual([]);
  for (const who of [child, ana, sup]) expect(who.errors).toEqual([]);
});
