// SMS length: how many characters and segments a text costs, as the phone network counts them
// (3GPP TS 23.038). Texts made only of the GSM-7 alphabet fit 160 characters in one SMS (153 a
// segment when split); any other character (Romanian ș and ț, Cyrillic, emoji) makes the whole
// text UCS-2: 70 in one SMS, 67 a segment, and emoji count twice.

const GSM7_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
/** Characters of the extension table: each costs two septets (an escape, then the character). */
const GSM7_EXTENDED = '^{}\\[~]|€\f';

const BASIC = new Set(GSM7_BASIC);
const EXTENDED = new Set(GSM7_EXTENDED);

/**
 * @returns {{encoding: 'GSM-7'|'UCS-2', units: number, segments: number, perSegment: number,
 *            left: number}} units: septets (GSM-7) or UTF-16 code units (UCS-2); left: what
 *            still fits in the last segment.
 */
export function smsLength(text) {
  let septets = 0;
  let gsm = true;
  for (const ch of text) {
    if (BASIC.has(ch)) septets += 1;
    else if (EXTENDED.has(ch)) septets += 2;
    else {
      gsm = false;
      break;
    }
  }
  const [units, single, multi] = gsm ? [septets, 160, 153] : [text.length, 70, 67];
  const segments = units === 0 ? 0 : units <= single ? 1 : Math.ceil(units / multi);
  const perSegment = segments > 1 ? multi : single;
  const capacity = segments <= 1 ? single : segments * multi;
  return { encoding: gsm ? 'GSM-7' : 'UCS-2', units, segments, perSegment, left: capacity - units };
}

/** "45/160 · 1 SMS · GSM-7" */
export function describe(text) {
  const s = smsLength(text);
  const capacity = s.segments <= 1 ? s.perSegment : s.segments * s.perSegment;
  const why = s.encoding === 'UCS-2' ? ' (special characters: shorter messages)' : '';
  return `${s.units}/${capacity} · ${s.segments} SMS · ${s.encoding}${why}`;
}
