// Scenario 1: a contact (a phone, in Romanian) and a counsellor chat end to end; the supervisor
// sees the queue, then the load, change live, without reloading.
import {
  test, expect, openContact, startChat, contactSays, openStaff, acceptOffer, counsellorSays, panel, screenshot,
} from '../lib/fixtures.js';

test('a contact and a counsellor chat in Romanian while the supervisor watches live', async ({ browser, gw }) => {
  const sup = await openStaff(browser, gw, 'maria', '/supervisor');
  const queueRows = sup.page.locator('#queue-table tbody tr[data-key]');
  await expect(sup.page.locator('#queue-table tbody')).toContainText('Nobody is waiting');

  const child = await openContact(browser, gw, { locale: 'ro-RO' });
  const page = child.page;
  await expect(page.locator('html')).toHaveAttribute('lang', 'ro');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Vorbește cu cineva care te ascultă');
  await expect(page.getByText('Nu trebuie să-ți spui numele.')).toBeVisible();
  await expect(page.locator('#call-helpline')).toHaveAttribute('href', 'tel:116111');
  await expect(page.locator('#call-helpline')).toContainText('116 111');
  await expect(page.locator('#call-emergency')).toHaveAttribute('href', 'tel:112');
  await expect(page.getByRole('button', { name: 'Ieșire rapidă' })).toBeVisible();
  await startChat(page, { topic: 'school' });
  await expect(page.locator('#status')).toContainText('Ești numărul 1 la rând');
  await contactSays(page, 'Bună. Colegii râd de mine la școală.');
  await expect(page.locator('#log li.from-contact .state')).toHaveText('Trimis');
  await screenshot(page, 'contact-waiting');

  // The supervisor sees the child waiting, and the alarm: nobody is available.
  await expect(queueRows).toHaveCount(1);
  await expect(queueRows.first()).toContainText('webchat');
  await expect(sup.page.locator('#tile-waiting dd')).toHaveText('1');
  await expect(sup.page.locator('#alarm')).toContainText('no counsellor is available');

  // Ana goes available, gets the offer and accepts it.
  const ana = await openStaff(browser, gw, 'ana');
  const first = await acceptOffer(ana.page);
  await expect(panel(ana.page).locator('li.from-contact')).toContainText('Colegii râd de mine');
  await expect(page.locator('#status')).toContainText('Vorbești cu Ana.');
  await expect(page.locator('#log li.from-contact .state')).toHaveText('Livrat');

  // The dashboard follows: nobody waits, Ana holds one of two.
  await expect(queueRows).toHaveCount(0);
  await expect(sup.page.locator('#counsellors-table tr[data-key="ana"]')).toContainText('1 / 2');
  await expect(sup.page.locator('#live-table tbody tr[data-key]')).toHaveCount(1);
  await expect(sup.page.locator('#alarm')).toBeHidden();

  // Typing both ways, then messages both ways.
  await panel(ana.page).locator('textarea.compose-text').pressSequentially('Te', { delay: 20 });
  await expect(page.locator('#typing')).toContainText('Ana scrie');
  await panel(ana.page).locator('textarea.compose-text').fill('');
  await counsellorSays(ana.page, 'Îmi pare rău că treci prin asta. Ce s-a întâmplat azi?');
  await expect(page.locator('#log li.from-counsellor')).toContainText('Ce s-a întâmplat azi?');
  await page.locator('#text').pressSequentially('Au', { delay: 20 });
  await expect(panel(ana.page).locator('.typing')).toBeVisible();
  await page.locator('#text').fill('');
  await contactSays(page, 'Mi-au luat ghiozdanul și l-au aruncat pe geam.');
  await expect(panel(ana.page).locator('li.from-contact')).toHaveCount(2);
  await expect(page.locator('#log li.from-contact .state').last()).toHaveText('Livrat');
  await screenshot(page, 'contact-chatting');

  // A second child: Ana holds two conversations, as tabs.
  const second = await openContact(browser, gw, { locale: 'ro-RO' });
  await startChat(second.page, { topic: 'online-safety' });
  await contactSays(second.page, 'Salut, cineva îmi cere poze pe internet.');
  const offer = ana.page.locator('#offer-list .offer');
  await expect(offer).toBeVisible();
  await expect(offer).toContainText('expires in');
  await expect(ana.page).toHaveTitle(/Offer/);
  await offer.getByRole('button', { name: 'Accept' }).click();
  await expect(ana.page.locator('#tabs [role="tab"]')).toHaveCount(2);
  await counsellorSays(ana.page, 'Salut! Ai făcut bine că ne-ai scris. Nu trimite nicio poză.');
  await expect(second.page.locator('#log li.from-counsellor')).toContainText('Nu trimite nicio poză');
  await page.locator('#text').fill('Ești acolo?');
  await page.locator('#text').press('Enter');
  await expect(ana.page.locator(`#tab-${first} .unread`)).toHaveText('1');
  await ana.page.locator(`#tab-${first}`).click();
  await expect(ana.page.locator(`#tab-${first} .unread`)).toHaveCount(0);
  await expect(sup.page.locator('#counsellors-table tr[data-key="ana"]')).toContainText('2 / 2');
  await expect(sup.page.locator('#live-table tbody tr[data-key]')).toHaveCount(2);
  await screenshot(ana.page, 'console-two-chats');

  // A third child waits while Ana is full: the dashboard raises its alarm.
  const third = await openContact(browser, gw, { locale: 'ro-RO' });
  await startChat(third.page, { topic: 'family' });
  await expect(queueRows).toHaveCount(1);
  await expect(sup.page.locator('#alarm')).toContainText('1 person is waiting and no counsellor is available');

  // The supervisor follows the first conversation silently and whispers to Ana.
  await sup.page.locator(`#live-table tr[data-key="${first}"]`).getByRole('button', { name: 'Monitor' }).click();
  await expect(sup.page.locator('#monitor li.from-contact')).toHaveCount(3);
  await sup.page.locator('#whisper-text').fill('Întreab-o dacă a spus cuiva de la școală.');
  await sup.page.getByRole('button', { name: 'Whisper' }).click();
  await expect(panel(ana.page).locator('li.whisper')).toContainText('Întreab-o dacă a spus');
  await expect(page.locator('#log')).not.toContainText('Întreab-o');
  await expect(sup.page.locator('#tile-answered dd')).toHaveText('2');
  await screenshot(sup.page, 'dashboard', { fullPage: true });

  // Ana closes the first conversation with an outcome and a tag.
  await panel(ana.page).getByRole('button', { name: 'Close…' }).click();
  const dialog = ana.page.locator('#close-dialog');
  await dialog.locator('#close-outcome').selectOption('advised');
  await dialog.getByLabel('bullying').check();
  await dialog.getByRole('button', { name: 'Close conversation' }).click();
  await expect(page.locator('#ended')).toBeVisible();
  await expect(page.locator('#ended-reason')).toHaveText('Consilierul a încheiat conversația.');
  await expect(page.locator('#composer')).toBeHidden();
  await expect(panel(ana.page).locator('.ended-note')).toContainText('Closed');
  // Ana has room again: the third child is offered to her.
  await expect(ana.page.locator('#offer-list .offer')).toBeVisible();

  for (const who of [child, second, third, ana, sup]) expect(who.errors).toEqual([]);
});
