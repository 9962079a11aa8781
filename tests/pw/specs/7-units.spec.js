// The pages' small pure pieces, run in Chromium as the pages load them: SMS segment counting
// (GSM-7 and UCS-2), stream-id order, language choice.
import { test, expect } from '../lib/fixtures.js';

test('SMS length, stream-id order and language choice', async ({ page, gw }) => {
  await page.goto(`${gw.url}/`);
  const result = await page.evaluate(async () => {
    const sms = await import('/static/sms.js');
    const thread = await import('/static/thread.js');
    const i18n = await import('/static/i18n.js');
    const s = (t) => {
      const r = sms.smsLength(t);
      return [r.encoding, r.units, r.segments];
    };
    return {
      sms: {
        hello: s('Hello'),
        gsm160: s('a'.repeat(160)),
        gsm161: s('a'.repeat(161)),
        euro: s('€'.repeat(80)),
        romanian: s('Bună, ești în siguranță?'),
        cyrillic70: s('я'.repeat(70)),
        cyrillic71: s('я'.repeat(71)),
        emoji: s('😀'),
        empty: s(''),
      },
      order: [
        thread.compareIds('1700000000000-10', '1700000000000-9') > 0,
        thread.compareIds('1700000000001-0', '1700000000000-99') > 0,
        thread.compareIds('5-1', '5-1') === 0,
      ],
      lang: [
        i18n.pickLanguage(['ro', 'ru', 'uk', 'en'], ['ro-MD']),
        i18n.pickLanguage(['ro', 'ru', 'uk', 'en'], ['mo']),
        i18n.pickLanguage(['ro', 'ru', 'uk', 'en'], ['de-DE', 'ru']),
        i18n.pickLanguage(['ro', 'ru', 'uk', 'en'], ['fr']),
        i18n.pickLanguage(['ru', 'en'], ['ro']),
      ],
    };
  });
  expect(result.sms).toEqual({
    hello: ['GSM-7', 5, 1],
    gsm160: ['GSM-7', 160, 1],
    gsm161: ['GSM-7', 161, 2],
    euro: ['GSM-7', 160, 1],
    romanian: ['UCS-2', 24, 1],
    cyrillic70: ['UCS-2', 70, 1],
    cyrillic71: ['UCS-2', 71, 2],
    emoji: ['UCS-2', 2, 1],
    empty: ['GSM-7', 0, 0],
  });
  expect(result.order).toEqual([true, true, true]);
  expect(result.lang).toEqual(['ro', 'ro', 'ru', 'ro', 'ru']);
});
