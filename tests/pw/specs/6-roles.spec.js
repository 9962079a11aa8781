// Scenario 6: the server enforces roles. A counsellor cannot read another counsellor's transcript
// or use supervisor actions, whether by the API (403) or over the staff socket (error frames).
import { test, expect, openContact, startChat, contactSays, openStaff, acceptOffer } from '../lib/fixtures.js';

test('a counsellor cannot read another\'s transcript or act as a supervisor', async ({ browser, gw, request }) => {
  const child = await openContact(browser, gw);
  await startChat(child.page);
  const ana = await openStaff(browser, gw, 'ana');
  const conversation = await acceptOffer(ana.page);
  await contactSays(child.page, 'Doar Ana ar trebui să citească asta.');

  // Ana may read her own transcript.
  const own = await ana.page.request.get(`${gw.url}/api/conversations/${conversation}/transcript`);
  expect(own.status()).toBe(200);

  // Ion is a counsellor too: the API refuses him Ana's transcript and every supervisor endpoint.
  const ion = await openStaff(browser, gw, 'ion');
  const api = (path) => ion.page.request.get(`${gw.url}${path}`);
  const transcript = await api(`/api/conversations/${conversation}/transcript`);
  expect(transcript.status()).toBe(403);
  expect(await transcript.text()).not.toContain('Doar Ana');
  for (const path of ['/api/queue', '/api/counsellors', '/api/conversations', '/api/stats', '/api/audit']) {
    expect((await api(path)).status(), path).toBe(403);
  }
  expect((await api('/api/console-config')).status()).toBe(200);
  expect((await api('/api/colleagues')).status()).toBe(200);
  // Without a session: 401.
  expect((await request.get(`${gw.url}/api/queue`)).status()).toBe(401);
  expect((await request.get(`${gw.url}/api/console-config`)).status()).toBe(401);

  // Over the staff socket, from Ion's own browser: every action on Ana's conversation is refused.
  const refusals = await ion.page.evaluate(async (conv) => {
    const ws = new WebSocket(`ws://${location.host}/ws/agent`);
    const frames = [];
    await new Promise((ok, fail) => {
      ws.onmessage = (e) => {
        const f = JSON.parse(e.data);
        frames.push(f);
        if (f.type === 'hello') ok();
      };
      ws.onerror = fail;
    });
    const attempts = [
      { type: 'monitor', conversation: conv },
      { type: 'whisper', conversation: conv, text: 'psst', client_msg_id: 'w1' },
      { type: 'urgency', conversation: conv, level: 'low' },
      { type: 'transfer', conversation: conv, counsellor: 'ion' },
      { type: 'close', conversation: conv, outcome: 'listened', tags: [] },
      { type: 'message', conversation: conv, text: 'hello', client_msg_id: 'm1' },
      { type: 'accept', conversation: conv },
    ];
    const out = [];
    for (const frame of attempts) {
      const before = frames.length;
      ws.send(JSON.stringify(frame));
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline && !frames.slice(before).some((f) => f.type === 'error' || f.type === 'monitoring')) {
        await new Promise((r) => setTimeout(r, 25));
      }
      const answer = frames.slice(before).find((f) => f.type === 'error' || f.type === 'monitoring');
      out.push({ sent: frame.type, got: answer ? answer.type : 'nothing', code: answer?.code, leaked: JSON.stringify(frames.slice(before)).includes('Doar Ana') });
    }
    ws.close();
    return out;
  }, conversation);
  for (const r of refusals) {
    expect(r.got, JSON.stringify(r)).toBe('error');
    expect(r.leaked).toBe(false);
  }
  expect(refusals.find((r) => r.sent === 'monitor').code).toBe('forbidden');
  expect(refusals.find((r) => r.sent === 'whisper').code).toBe('forbidden');

  // The dashboard tells Ion it is not for him, and shows no data.
  await ion.page.goto(`${gw.url}/supervisor`);
  await expect(ion.page.locator('#refused')).toContainText('This page is for supervisors');
  await expect(ion.page.locator('#dash')).toBeHidden();

  // Nothing changed for Ana's conversation.
  await expect(ana.page.locator(`#tab-${conversation}`)).toBeVisible();
  await expect(ana.page.locator('.panel:not([hidden]) .ended-note')).toBeHidden();
});
