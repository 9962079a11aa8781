/* The chat widget for a helpline's own site:
 *
 *   <script src="https://chat.example.org/widget.js" defer></script>
 *
 * adds a launcher button; it opens the chat in an iframe (served by the gateway, which lets only
 * the sites in pages.widget_hosts frame it). While the chat is open, a quick-exit button (and
 * Escape pressed twice) ends the chat, wipes it, and replaces the host page itself with a neutral
 * site, so Back leads to neither. Styles are set through the CSSOM, so a strict CSP on the host
 * page does not break it; nothing is stored on the host page.
 */
(function () {
  'use strict';
  var CONFIG = {{CONFIG}};
  var script = document.currentScript;
  if (!script || window.__helplineWidget) return;
  window.__helplineWidget = true;
  var ORIGIN = new URL(script.src, location.href).origin;
  var WORDS = {
    ro: { open: 'Scrie-ne', close: 'Închide fereastra chatului', exit: 'Ieșire rapidă', title: 'Chat cu Telefonul Copilului' },
    ru: { open: 'Напиши нам', close: 'Закрыть окно чата', exit: 'Быстрый выход', title: 'Чат с линией помощи' },
    uk: { open: 'Напиши нам', close: 'Закрити вікно чату', exit: 'Швидкий вихід', title: 'Чат з лінією допомоги' },
    en: { open: 'Chat with us', close: 'Close the chat window', exit: 'Quick exit', title: 'Chat with the helpline' }
  };
  var langs = [document.documentElement.lang].concat(navigator.languages || [navigator.language]);
  var lang = 'en';
  for (var i = 0; i < langs.length; i++) {
    var code = String(langs[i] || '').toLowerCase().split('-')[0];
    if (code === 'mo') code = 'ro';
    if (WORDS[code] && CONFIG.languages.indexOf(code) !== -1) { lang = code; break; }
  }
  var w = WORDS[lang];
  var panel = null;
  var frame = null;
  var leaving = false;
  var lastEscape = 0;

  function css(el, styles) {
    for (var k in styles) if (Object.prototype.hasOwnProperty.call(styles, k)) el.style[k] = styles[k];
    return el;
  }

  function button(text, styles) {
    var b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    return css(b, Object.assign({
      font: '600 16px/1.2 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      minHeight: '44px', padding: '10px 18px', borderRadius: '999px', cursor: 'pointer',
      border: '2px solid #ffffff', boxShadow: '0 4px 16px rgba(0,0,0,.25)'
    }, styles));
  }

  var launcher = button(w.open, {
    position: 'fixed', right: '16px', bottom: '16px', zIndex: '2147483646',
    background: '#0d5c63', color: '#ffffff'
  });
  launcher.setAttribute('aria-haspopup', 'dialog');
  launcher.addEventListener('click', open);

  function open() {
    if (panel) { panel.style.display = 'flex'; launcher.style.display = 'none'; frame.focus(); return; }
    panel = css(document.createElement('div'), {
      position: 'fixed', right: '16px', bottom: '16px', zIndex: '2147483647',
      width: 'min(400px, calc(100vw - 32px))', height: 'min(640px, calc(100vh - 32px))',
      display: 'flex', flexDirection: 'column', borderRadius: '16px', overflow: 'hidden',
      background: '#0d5c63', boxShadow: '0 10px 40px rgba(0,0,0,.35)'
    });
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-label', w.title);
    var bar = css(document.createElement('div'), {
      display: 'flex', alignItems: 'center', gap: '8px', padding: '6px 6px 6px 14px'
    });
    var title = css(document.createElement('span'), {
      flex: '1', color: '#ffffff', font: '700 16px/1.2 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'
    });
    title.textContent = w.title;
    bar.appendChild(title);
    var exit = button(w.exit, { background: '#a4161a', color: '#ffffff', boxShadow: 'none' });
    exit.setAttribute('data-helpline-exit', '');
    exit.addEventListener('click', quickExit);
    var close = button('×', { background: 'transparent', color: '#ffffff', boxShadow: 'none', padding: '6px 14px' });
    close.setAttribute('aria-label', w.close);
    close.addEventListener('click', function () { panel.style.display = 'none'; launcher.style.display = ''; launcher.focus(); });
    bar.appendChild(exit);
    bar.appendChild(close);
    frame = css(document.createElement('iframe'), { flex: '1', width: '100%', border: '0', background: '#f6f4ef' });
    frame.title = w.title;
    frame.src = ORIGIN + '/?embed=1';
    frame.setAttribute('referrerpolicy', 'no-referrer');
    frame.setAttribute('allow', '');
    frame.addEventListener('load', function () { frame.focus(); }, { once: true });
    panel.appendChild(bar);
    panel.appendChild(frame);
    document.body.appendChild(panel);
    launcher.style.display = 'none';
  }

  /* Ends the chat inside the frame (it wipes itself), then leaves the host page for good. */
  function quickExit() {
    if (leaving) return;
    leaving = true;
    var go = function () { location.replace(CONFIG.exit_url); };
    if (panel) panel.style.visibility = 'hidden';
    launcher.style.display = 'none';
    if (frame && frame.contentWindow) {
      try { frame.contentWindow.postMessage({ helpline: 'exit' }, ORIGIN); } catch (e) { /* gone */ }
      setTimeout(go, 800);
    } else {
      go();
    }
  }

  window.addEventListener('message', function (event) {
    if (event.origin !== ORIGIN || !event.data) return;
    if (event.data.helpline === 'exited' || event.data.helpline === 'exit') {
      leaving = true;
      location.replace(CONFIG.exit_url);
    }
  });

  document.addEventListener('keydown', function (event) {
    if (event.key !== 'Escape' || !panel) return;
    var now = Date.now();
    if (now - lastEscape < 1500) quickExit();
    else lastEscape = now;
  });

  function mount() { document.body.appendChild(launcher); }
  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount);
})();
