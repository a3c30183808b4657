// A browser phone on JsSIP (a SIP library the project did not write), driven by
// test/sip-websocket.test.ts through window.phone. Everything it sees goes into window.phone.events.
/* global JsSIP, window, document */
(() => {
  const events = [];
  const log = (type, detail = {}) => {
    events.push({ type, at: Date.now(), ...detail });
    document.getElementById('log').textContent += `${type} ${JSON.stringify(detail)}\n`;
  };

  // The built-in callee is not a WebRTC endpoint: its SDP answer has no ICE or DTLS attributes, which
  // Chromium refuses. Its answer is rewritten into one the PeerConnection takes (no media will flow;
  // the SIP dialog is what the test is about).
  function webrtcAnswer(offer) {
    const fingerprint = offer.match(/a=fingerprint:[^\r\n]+/)[0];
    const sections = offer
      .split(/\r\nm=/)
      .slice(1)
      .map((m) => `m=${m}`);
    const session = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0'];
    const bundle = offer.match(/a=group:BUNDLE[^\r\n]+/);
    if (bundle) session.push(bundle[0]);
    const media = sections.map((m) => {
      const lines = m.split('\r\n');
      const mline = lines[0];
      const keep = lines.filter((l) => /^a=(mid|rtpmap|fmtp|rtcp-mux|rtcp-fb|extmap)/.test(l));
      return [
        mline.replace(/ \d+ /, ' 9 '),
        'c=IN IP4 0.0.0.0',
        'a=ice-ufrag:ebbt',
        'a=ice-pwd:ebbtestebbtestebbtestebb',
        fingerprint,
        'a=setup:active',
        'a=recvonly',
        ...keep,
      ].join('\r\n');
    });
    return [...session, ...media].join('\r\n') + '\r\n';
  }

  window.phone = {
    events,
    start(wsUrl, domain) {
      const socket = new JsSIP.WebSocketInterface(wsUrl);
      const ua = new JsSIP.UA({
        sockets: [socket],
        uri: `sip:browser@${domain}`,
        register: true,
        register_expires: 300,
        connection_recovery_min_interval: 1,
        connection_recovery_max_interval: 2,
      });
      ua.on('connected', () => log('connected'));
      ua.on('disconnected', (e) => log('disconnected', { code: e.code, reason: e.reason }));
      ua.on('registered', () => log('registered'));
      ua.on('registrationFailed', (e) => log('registrationFailed', { cause: e.cause }));
      ua.on('newRTCSession', ({ session }) => {
        let offer = '';
        session.on('sdp', (e) => {
          if (e.originator === 'local') offer = e.sdp;
          else e.sdp = webrtcAnswer(offer);
        });
        session.on('confirmed', () => log('confirmed'));
        session.on('ended', (e) => log('ended', { originator: e.originator, cause: e.cause }));
        session.on('failed', (e) => log('failed', { originator: e.originator, cause: e.cause }));
      });
      // The close code of the WebSocket, as the browser saw it.
      const origConnect = socket.connect.bind(socket);
      socket.connect = () => {
        origConnect();
        const ws = socket._ws;
        if (ws) ws.addEventListener('close', (e) => log('wsclose', { code: e.code }));
      };
      ua.start();
      window.phone.ua = ua;
    },
    call(target) {
      window.phone.session = window.phone.ua.call(target, {
        mediaConstraints: { audio: true, video: false },
      });
    },
  };
})();
