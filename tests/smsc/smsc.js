// A test SMSC built on the npm `smpp` package (written by someone else), for tests/tests/smpp.rs.
//
//   node smsc.js PORT SYSTEM_ID PASSWORD
//
// Listens on 127.0.0.1:PORT, accepts bind_transceiver with the given credentials, and prints one
// JSON line per event on stdout: {"event":"listening"}, {"event":"bind",...},
// {"event":"submit_sm",...} (with the UDH as hex and the text decoded by the package),
// {"event":"deliver_sm_resp",...}, {"event":"enquire_link"}, {"event":"unbind"}, {"event":"closed"}.
// Commands come as JSON lines on stdin:
//   {"deliver": {"from": "...", "to": "...", "text": "...", "ucs2": true, "udh": [ref, total, seq],
//                "sequence": 9000}}  (sequence: send again as the same PDU, as an SMSC retrying)
//   {"receipt": {"from": "...", "to": "...", "text": "id:1 stat:DELIVRD"}}
//   {"fail_part": {"index": 2, "status": 20}}  answers the next submit_sm carrying part 2 of a
//   long text with that error status (20: message queue full), recorded as submit_sm_refused.
//   {"drop": true, "down_ms": 1500}  closes every session's socket at once (the link drops
//   without an unbind) and refuses connections for down_ms, as an SMSC restarting would.
'use strict';
const smpp = require('smpp');
const readline = require('readline');

const [port, systemId, password] = process.argv.slice(2);
const sessions = new Set();
let failPart = null;
let nextMessageId = 1;

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

const server = smpp.createServer({ debug: false }, (session) => {
  session.on('error', (e) => emit({ event: 'error', error: String(e) }));
  session.on('close', () => {
    sessions.delete(session);
    emit({ event: 'closed' });
  });
  session.on('bind_transceiver', (pdu) => {
    const ok = pdu.system_id === systemId && pdu.password === password;
    emit({ event: 'bind', system_id: pdu.system_id, system_type: pdu.system_type, ok });
    if (!ok) {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      session.close();
      return;
    }
    session.send(pdu.response({ system_id: 'test-smsc' }));
    sessions.add(session);
  });
  session.on('submit_sm', (pdu) => {
    const sm = pdu.short_message || {};
    const udh = (sm.udh || []).map((b) => b.toString('hex'));
    const concat = udh.find((h) => h.startsWith('0003'));
    const index = concat ? parseInt(concat.slice(8, 10), 16) : 1;
    if (failPart && failPart.index === index) {
      emit({ event: 'submit_sm_refused', udh, status: failPart.status });
      session.send(pdu.response({ command_status: failPart.status }));
      failPart = null;
      return;
    }
    emit({
      event: 'submit_sm',
      source_addr: pdu.source_addr,
      source_addr_ton: pdu.source_addr_ton,
      source_addr_npi: pdu.source_addr_npi,
      destination_addr: pdu.destination_addr,
      esm_class: pdu.esm_class,
      data_coding: pdu.data_coding,
      registered_delivery: pdu.registered_delivery,
      udh,
      text: typeof sm.message === 'string' ? sm.message : String(sm.message || ''),
    });
    session.send(pdu.response({ message_id: String(nextMessageId++) }));
  });
  session.on('enquire_link', (pdu) => {
    emit({ event: 'enquire_link' });
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    emit({ event: 'unbind' });
    session.send(pdu.response());
    session.close();
  });
});

function deliver(d, receipt) {
  const pdu = {
    sequence_number: d.sequence || 0,
    source_addr: d.from,
    source_addr_ton: 1,
    source_addr_npi: 1,
    destination_addr: d.to,
    esm_class: receipt ? 0x04 : 0,
    data_coding: d.ucs2 ? 8 : 0,
    short_message: d.udh
      ? { udh: Buffer.from([5, 0, 3, d.udh[0], d.udh[1], d.udh[2]]), message: d.text }
      : { message: d.text },
  };
  for (const session of sessions) {
    session.deliver_sm(pdu, (resp) => {
      emit({ event: 'deliver_sm_resp', command_status: resp.command_status });
    });
  }
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  if (command.deliver) deliver(command.deliver, false);
  if (command.receipt) deliver(command.receipt, true);
  if (command.fail_part) failPart = command.fail_part;
  if (command.drop) {
    server.close();
    for (const session of sessions) session.socket.destroy();
    setTimeout(() => {
      server.listen(Number(port), '127.0.0.1', () => emit({ event: 'listening' }));
    }, command.down_ms || 0);
  }
});

server.listen(Number(port), '127.0.0.1', () => emit({ event: 'listening' }));
