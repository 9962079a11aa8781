// Scenario 2: the quick exit. The chat disappears, sessionStorage is empty, the neutral site
// replaces the chat in the history (Back does not return to it), and the conversation is ended on
// the server. Also with Escape pressed twice, and from the widget on a helpline's own site.
import { createServer } from 'node:http';
import { test, expect, PHONE, startChat, contactSays, watchErrors } from '../lib/fixtures.js';
import { redis, freePort } from '../lib/processes.js';

const NEUTRAL = 'http://neutral.test/weather';
// The helpline's own site, embedding the widget: a real local server (Chromium would refuse a
// made-up public origin loading a script from this machine), on a port chosen up front so the
// gateway can be told to let it frame the chat.
const HOST = `http://127.0.0.1:${await freePort()}`;

test.use({
  gwSettings: { HELPLINE_PAGES__EXIT_URL: NEUTRAL, HELPLINE_PAGES__WIDGET_HOSTS: HOST },
});

/** A phone whose fake neutral site and fake helpline site answer locally. */
async function phone(browser, gw) {
  const context = await browser.newContext({ ...PHONE, locale: 'ro-RO' });
  await context.route('http://neutral.test/**', (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>Vremea</title><h1>Vremea azi</h1>' }),
  );
  const page = await context.newPage();
  const errors = watchErrors(page);
  const conversations = [];
  page.on('websocket', (ws) =>
    ws.on('framereceived', ({ payload }) => {
      try {
        const frame = JSON.parse(String(payload));
        if (frame.type === 'started') conversations.push(frame.conversation);
      } catch {
        /* not JSON */
      }
    }),
  );
  return { context, page, errors, conversations };
}

async function stateOf(gw, conversation) {
  return redis(gw, 'HGET', `${gw.prefix}conv:${conversation}`, 'state');
}

for (const how of ['the button', 'Escape twice']) {
  test(`quick exit with ${how} leaves no trace and ends the chat`, async ({ browser, gw }) => {
    const { context, page, errors, conversations } = await phone(browser, gw);
    await page.goto('http://neutral.test/before');
    await page.goto(`${gw.url}/`);
    await startChat(page);
    await contactSays(page, 'Cineva mă amenință. Nu vreau să vadă mama.');
    expect(await page.evaluate(() => sessionStorage.length)).toBeGreaterThan(0);
    expect(conversations).toHaveLength(1);
    await expect.poll(() => stateOf(gw, conversations[0])).toBe('queued');

    if (how === 'the button') await page.getByRole('button', { name: 'Ieșire rapidă' }).click();
    else {
      await page.locator('#text').press('Escape');
      await page.locator('#text').press('Escape');
    }
    await page.waitForURL(NEUTRAL);
    await expect(page.locator('h1')).toHaveText('Vremea azi');

    // Back skips the chat: it was replaced, not left.
    await page.goBack();
    expect(page.url()).toBe('http://neutral.test/before');
    await page.goForward();
    expect(page.url()).toBe(NEUTRAL);

    // Ended on the server (a child who waited and left counts as abandoned).
    await expect.poll(() => stateOf(gw, conversations[0])).toBe('abandoned');

    // Nothing to resume: the chat page starts afresh, and no storage or cookie is left.
    await page.goto(`${gw.url}/`);
    await expect(page.locator('#intro')).toBeVisible();
    await expect(page.locator('#log li')).toHaveCount(0);
    expect(await page.evaluate(() => [sessionStorage.length, localStorage.length])).toEqual([0, 0]);
    expect(await context.cookies()).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });
}

test('the contact page is not cached and carries a strict policy', async ({ request, gw }) => {
  const res = await request.get(`${gw.url}/`);
  const headers = res.headers();
  expect(headers['cache-control']).toBe('no-store');
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['referrer-policy']).toBe('no-referrer');
  expect(headers['set-cookie']).toBeUndefined();
  const csp = headers['content-security-policy'];
  expect(csp).toContain("script-src 'self'");
  expect(csp).not.toContain('unsafe-inline');
  expect(csp).toContain(`frame-ancestors 'self' ${HOST}`);
  for (const path of ['/console', '/supervisor']) {
    const staff = await request.get(`${gw.url}${path}`);
    expect(staff.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(staff.headers()['x-frame-options']).toBe('DENY');
  }
  const asset = await request.get(`${gw.url}/static/chat.js`);
  expect(asset.headers()['content-type']).toContain('text/javascript');
  expect((await request.get(`${gw.url}/static/nope.js`)).status()).toBe(404);
});

/** Serves the helpline's site at HOST until closed. */
async function helplineSite(gw) {
  const html = `<!doctype html><html lang="ro"><head><meta charset="utf-8"><title>Siguronline</title></head>
<body><h1>Siguranța online</h1><p>Sfaturi pentru copii și părinți.</p>
<script src="${gw.url}/widget.js"></script></body></html>`;
  const server = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((ok) => server.listen(Number(new URL(HOST).port), '127.0.0.1', ok));
  return server;
}

test('the widget opens the chat on a helpline site and its quick exit leaves that site', async ({ browser, gw }) => {
  const site = await helplineSite(gw);
  const { context, page, errors, conversations } = await phone(browser, gw);
  await page.goto('http://neutral.test/before');
  await page.goto(`${HOST}/`);
  await page.getByRole('button', { name: 'Scrie-ne' }).click();
  const chat = page.frameLocator('iframe[title]');
  // One quick exit: the widget's, on the host page (the frame's own bar is hidden).
  await expect(page.locator('[data-helpline-exit]')).toBeVisible();
  await expect(chat.locator('#start')).toBeVisible();
  await expect(chat.locator('#exit')).toBeHidden();
  await chat.locator('#start').click();
  await chat.locator('#text').fill('Bună, am nevoie de ajutor.');
  await chat.locator('#text').press('Enter');
  await expect(chat.locator('#log li.from-contact')).toHaveAttribute('data-id', /\d+-\d+/);
  expect(conversations).toHaveLength(1);

  await page.locator('[data-helpline-exit]').click();
  await page.waitForURL(NEUTRAL);
  await page.goBack();
  expect(page.url()).toBe('http://neutral.test/before');
  await expect.poll(() => stateOf(gw, conversations[0])).toBe('abandoned');
  expect(errors).toEqual([]);
  await context.close();
  site.close();
});
