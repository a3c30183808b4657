/* global process, console, URL */
// A chat server (node:http + ws) that embeds Ebb: `node examples/embedded-chat/server.js fe01`.
// It listens where pool.yaml says for its member, drains itself when an operator pauses it, and its
// clients reconnect when told 1012 (Service Restart) at a deadline. See docs/library.md.
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { embed } from 'ebb';

const member = process.argv[2] ?? 'fe01';
const agent = await embed({
  config: fileURLToPath(new URL('./pool.yaml', import.meta.url)),
  member,
  service: 'chat',
});

const server = createServer((req, res) => {
  if (req.url === '/health') {
    // Ready only while the pool sends new sessions here (a load balancer's health check).
    res.writeHead(agent.ready ? 200 : 503, { 'content-type': 'text/plain' });
    res.end(agent.ready ? 'ready\n' : `${agent.state}\n`);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(page(member));
});

const wss = new WebSocketServer({ server, path: '/ws' });
wss.on('connection', (socket) => {
  socket.on('message', (data) => {
    const text = `${member}: ${data.toString().slice(0, 500)}`;
    for (const peer of wss.clients) if (peer.readyState === peer.OPEN) peer.send(text);
  });
});

await agent.attach(server);
agent.attachWebSocketServer(wss);

agent.on('paused', () => console.log(`${member}: paused, ${agent.stats().sessions} sessions drain`));
agent.on('drained', () => console.log(`${member}: drained: safe to restart`));
agent.on('resumed', () => console.log(`${member}: back in the pool`));
agent.on('forced', (event) => console.log(`${member}: deadline ended ${event.data?.count} sessions`));
console.log(`${member}: chat ${agent.state} on`, agent.addresses()[0] ?? '(paused: not listening)');

// Ctrl-C: leave the pool politely (new sessions refused, open ones end by themselves); twice: now.
process.once('SIGINT', () => {
  console.log(`${member}: leaving the pool; Ctrl-C again to end the sessions now`);
  process.once('SIGINT', () => agent.destroy().then(() => process.exit(0)));
  agent.close().then(() => process.exit(0));
});
process.once('SIGTERM', () => agent.destroy().then(() => process.exit(0)));

function page(name) {
  return `<!doctype html><meta charset="utf-8"><title>chat on ${name}</title>
<pre id="log"></pre><input id="say" placeholder="say something, then Enter" autofocus>
<script>
const log = (line) => (document.getElementById('log').textContent += line + '\\n');
let ws;
function open() {
  ws = new WebSocket('ws://' + location.host + '/ws');
  ws.onopen = () => log('[connected to ${name}]');
  ws.onmessage = (e) => log(e.data);
  // 1012: the server is going away for maintenance; reconnect (through the pool's DNS, to a member
  // that accepts). This page simply retries its own host.
  ws.onclose = (e) => { log('[closed ' + e.code + ']'); setTimeout(open, 1000 + Math.random() * 2000); };
}
open();
document.getElementById('say').onkeydown = (e) => {
  if (e.key === 'Enter' && ws.readyState === 1) { ws.send(e.target.value); e.target.value = ''; }
};
</script>`;
}
