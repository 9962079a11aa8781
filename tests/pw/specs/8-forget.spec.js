// Erasure on request from the contact page: "Delete my conversation" asks first, then the
// conversation is erased on the server at once (no key of it is left in Redis), the page shows
// none of its messages and says so, in the page's language.
import { test, expect, openContact, startChat, contactSays } from '../lib/fixtures.js';
import { redis } from '../lib/processes.js';

for (const [locale, button, yes, no, done] of [
  ['ro-RO', 'Șterge conversația mea', 'Da, șterge', 'Nu, păstrează', 'Conversația ta a fost ștearsă'],
  ['uk-UA', 'Видалити мою розмову', 'Так, видалити', 'Ні, залишити', 'Твою розмову видалено'],
]) {
  test(`delete my conversation (${locale}) asks, then erases it everywhere`, async ({ browser, gw }) => {
    const { context, page, errors } = await openContact(browser, gw, { locale });
    const started = new Promise((resolve) =>
      page.on('websocket', (ws) =>
        ws.on('framereceived', ({ payload }) => {
          try {
            const frame = JSON.parse(String(payload));
            if (frame.type === 'started') resolve(frame.conversation);
          } catch {
            /* not JSON */
          }
        }),
      ),
    );
    await startChat(page);
    const conversation = await started;
    await contactSays(page, 'CANARY-PAGE-FORGET să nu afle nimeni');
    const key = `${gw.prefix}conv:${conversation}`;
    expect(await redis(gw, 'EXISTS', key)).toBe('1');

    // Asked first; "no" keeps everything.
    await page.getByRole('button', { name: button }).click();
    await page.getByRole('button', { name: no }).click();
    expect(await redis(gw, 'EXISTS', key)).toBe('1');

    await page.getByRole('button', { name: button }).click();
    await page.getByRole('button', { name: yes }).click();
    await expect(page.locator('#ended-reason')).toContainText(done);
    await expect(page.locator('#log li')).toHaveCount(0);
    await expect.poll(() => redis(gw, 'EXISTS', key)).toBe('0');
    expect(await redis(gw, 'EXISTS', `${gw.prefix}msgs:${conversation}`)).toBe('0');
    expect(errors).toEqual([]);
    await context.close();
  });
}
