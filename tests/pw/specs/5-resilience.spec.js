// Scenario 5: a counsellor reloads mid-conversation and carries on; a contact's network drops and
// comes back. No message is lost, none is shown twice, on either side.
import {
  test, expect, openContact, startChat, contactSays, openStaff, acceptOffer, counsellorSays, panel,
} from '../lib/fixtures.js';

/** The texts of the messages in `locator`, and a check that no stored id appears twice. */
async function texts(list) {
  const ids = (await list.evaluateAll((els) => els.map((e) => e.dataset.id))).filter(Boolean);
  expect(new Set(ids).size, `duplicate ids: ${ids}`).toBe(ids.length);
  return list.locator('.text').allTextContents();
}

test('a counsellor reload and a contact network drop lose nothing and double nothing', async ({ browser, gw }) => {
  const child = await openContact(browser, gw, { locale: 'ro-RO' });
  const page = child.page;
  await startChat(page);
  const ana = await openStaff(browser, gw, 'ana');
  const conversation = await acceptOffer(ana.page);
  await contactSays(page, 'unu: bună');
  await counsellorSays(ana.page, 'doi: bună, te ascult');
  await contactSays(page, 'trei: mi-e frică');

  // The counsellor reloads: `hello` restores the conversation with its history, once.
  await ana.page.reload();
  await expect(ana.page.locator(`#tab-${conversation}`)).toBeVisible();
  await expect(ana.page.locator('#go-available')).toBeEnabled();
  await ana.page.locator(`#tab-${conversation}`).click();
  const anaLog = panel(ana.page).locator('.messages > li.msg');
  await expect(anaLog).toHaveCount(3);
  expect(await texts(anaLog)).toEqual(['unu: bună', 'doi: bună, te ascult', 'trei: mi-e frică']);
  await counsellorSays(ana.page, 'patru: sunt tot aici');
  await expect(page.locator('#log li.from-counsellor')).toHaveCount(2);
  await expect(page.locator('#status')).toContainText('Vorbești cu Ana.');

  // The contact's network drops. They keep writing; Ana writes too.
  await child.context.setOffline(true);
  await expect(page.locator('#conn')).toContainText('Nu ai internet');
  await page.locator('#text').fill('cinci: scris fără internet');
  await page.locator('#text').press('Enter');
  await page.locator('#text').fill('șase: tot fără internet');
  await page.locator('#text').press('Enter');
  await expect(page.locator('#log li.from-contact .state').last()).toHaveText('Se trimite…');
  await counsellorSays(ana.page, 'șapte: ești acolo?');
  await counsellorSays(ana.page, 'opt: te aștept');

  // Back online: the page resumes, gets what it missed, sends what it held.
  await child.context.setOffline(false);
  await expect(page.locator('#conn')).toBeHidden();
  const childLog = page.locator('#messages > li.msg');
  await expect(page.locator('#messages > li.msg:not([data-id])')).toHaveCount(0);
  await expect(childLog).toHaveCount(8);
  const expected = [
    'unu: bună',
    'doi: bună, te ascult',
    'trei: mi-e frică',
    'patru: sunt tot aici',
    'șapte: ești acolo?',
    'opt: te aștept',
    'cinci: scris fără internet',
    'șase: tot fără internet',
  ];
  expect(await texts(childLog)).toEqual(expected);
  await expect(anaLog).toHaveCount(8);
  expect(await texts(anaLog)).toEqual(expected);

  // A second drop right after sending: the message is kept and resent, stored once.
  await page.locator('#text').fill('nouă: ultimul');
  await page.locator('#text').press('Enter');
  await child.context.setOffline(true);
  await child.context.setOffline(false);
  await expect(page.locator('#messages > li.msg:not([data-id])')).toHaveCount(0);
  await expect(anaLog).toHaveCount(9);
  await page.waitForTimeout(1000);
  await expect(childLog).toHaveCount(9);
  await expect(anaLog).toHaveCount(9);
  expect(await texts(childLog)).toEqual([...expected, 'nouă: ultimul']);
  expect(await texts(anaLog)).toEqual([...expected, 'nouă: ultimul']);

  // A reload of the contact's page (same tab): the whole conversation comes back, once.
  await page.reload();
  await expect(page.locator('#chat')).toBeVisible();
  await expect(childLog).toHaveCount(9);
  expect(await texts(childLog)).toEqual([...expected, 'nouă: ultimul']);
  expect(child.errors).toEqual([]);
  expect(ana.errors).toEqual([]);
});

test('a message stored whose ack was lost is resent and shown once', async ({ browser, gw }) => {
  const context = await browser.newContext({ locale: 'ro-RO', viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  let dropNextAck = false;
  let drops = 0;
  // Between the page and the gateway: forward every frame, except that once, the connection
  // breaks right after the gateway stored a message and before its ack reaches the page.
  await page.routeWebSocket(/\/ws\/chat$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      if (dropNextAck && JSON.parse(String(m)).type === 'ack') {
        dropNextAck = false;
        drops += 1;
        server.close();
        ws.close({ code: 4000, reason: 'network broke' });
        return;
      }
      ws.send(m);
    });
  });
  await page.goto(`${gw.url}/`);
  await startChat(page);
  const ana = await openStaff(browser, gw, 'ana');
  await acceptOffer(ana.page);
  await contactSays(page, 'înainte');

  dropNextAck = true;
  await page.locator('#text').fill('ack pierdut');
  await page.locator('#text').press('Enter');
  await expect.poll(() => drops).toBe(1);
  await expect(page.locator('#messages > li.msg:not([data-id])')).toHaveCount(0);
  await contactSays(page, 'după');
  const childLog = page.locator('#messages > li.msg');
  expect(await texts(childLog)).toEqual(['înainte', 'ack pierdut', 'după']);
  const anaLog = panel(ana.page).locator('.messages > li.msg');
  await expect(anaLog).toHaveCount(3);
  expect(await texts(anaLog)).toEqual(['înainte', 'ack pierdut', 'după']);
  await context.close();
});
