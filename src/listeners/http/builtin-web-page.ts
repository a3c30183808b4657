/** Escapes text for HTML element content and attribute values. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The chat page of `builtin:web`: joins the member's room over `/ws/chat`, shows who served it and, when
 * the socket closes, the close code — 1012 at a deadline (SPEC §10) — and reconnects, landing on
 * whichever member the pool sends it to next.
 */
export function chatPage(member: string): string {
  const who = escapeHtml(member);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ebb demo chat — ${who}</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 40rem; padding: 1rem; }
  #log { border: 1px solid #ccc; border-radius: 6px; height: 24rem; overflow-y: auto; padding: .5rem; }
  #log p { margin: .2rem 0; } .sys { color: #666; font-style: italic; }
  form { display: flex; gap: .5rem; margin-top: .5rem; } #text { flex: 1; padding: .4rem; }
  #state { font-weight: bold; }
</style>
</head>
<body>
<h1>Ebb demo chat</h1>
<p>Page served by member <b id="member">${who}</b>; socket: <span id="state">connecting</span>.</p>
<div id="log" aria-live="polite"></div>
<form id="form"><input id="text" autocomplete="off" placeholder="Say something" maxlength="2000"><button>Send</button></form>
<script>
const log = document.getElementById('log');
const state = document.getElementById('state');
const name = 'guest-' + Math.random().toString(36).slice(2, 6);
let ws = null;
let delay = 500;
function line(text, cls) {
  const p = document.createElement('p');
  p.textContent = text;
  if (cls) p.className = cls;
  log.append(p);
  log.scrollTop = log.scrollHeight;
}
function connect() {
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/chat?name=' + name;
  ws = new WebSocket(url);
  ws.onopen = () => { state.textContent = 'open'; delay = 500; };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === 'welcome') { document.getElementById('member').textContent = m.member; line('you are ' + m.name + ' on ' + m.member + ' (' + m.count + ' here)', 'sys'); }
    else if (m.type === 'join' || m.type === 'leave') line(m.name + (m.type === 'join' ? ' joined' : ' left') + ' (' + m.count + ' here)', 'sys');
    else line(m.name + ': ' + m.text);
  };
  ws.onclose = (e) => {
    (window.ebbCloseCodes ||= []).push(e.code);
    state.textContent = 'closed ' + e.code + (e.code === 1012 ? ' (service restart): reconnecting' : ': reconnecting');
    line('socket closed with code ' + e.code + (e.reason ? ' (' + e.reason + ')' : ''), 'sys');
    setTimeout(connect, e.code === 1012 ? Math.random() * 1000 : delay);
    delay = Math.min(delay * 2, 10000);
  };
}
document.getElementById('form').onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById('text');
  if (ws && ws.readyState === 1 && input.value) { ws.send(input.value); input.value = ''; }
};
connect();
</script>
</body>
</html>
`;
}
