// QMP, QEMU's machine protocol (docs/interop/qmp-spec.rst in QEMU's tree): JSON objects, one per line, over the
// guest's unix socket (`-qmp unix:PATH,server=on,wait=off`). The server greets with {"QMP": {...}}; the client must
// send {"execute": "qmp_capabilities"} before any other command; each command is answered by {"return": …} or
// {"error": {"class", "desc"}}, and asynchronous {"event": …} lines may come in between. This is the channel libvirt
// itself drives QEMU through; the compute OS uses it directly (images/build.ts says why not libvirt).
import { createConnection } from 'node:net';

export class QmpError extends Error {
  override name = 'QmpError';
}

export interface QmpOptions {
  timeoutMs?: number;
}

/** Connects, negotiates capabilities, runs each command in order and closes; returns each command's `return`. */
export async function qmp(socketPath: string, commands: readonly { execute: string; arguments?: Record<string, unknown> }[], { timeoutMs = 5000 }: QmpOptions = {}): Promise<unknown[]> {
  return new Promise<unknown[]>((resolve, reject) => {
    const sock = createConnection(socketPath);
    const results: unknown[] = [];
    // -1: waiting for the greeting; 0: for qmp_capabilities' answer; n ≥ 1: for commands[n - 1]'s
    let step = -1;
    let buf = '';
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(results);
    };
    const timer = setTimeout(() => finish(new QmpError(`QMP ${socketPath}: no answer within ${timeoutMs} ms (step ${step < 1 ? (step < 0 ? 'greeting' : 'qmp_capabilities') : commands[step - 1]!.execute})`)), timeoutMs);
    const send = (cmd: { execute: string; arguments?: Record<string, unknown> }) => sock.write(`${JSON.stringify(cmd)}\n`);
    const next = () => {
      step++;
      if (step === 0) send({ execute: 'qmp_capabilities' });
      else if (step <= commands.length) send(commands[step - 1]!);
      else finish();
    };
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return finish(new QmpError(`QMP ${socketPath}: not JSON: ${line.slice(0, 200)}`));
        }
        if ('event' in msg) continue;
        if (step === -1) {
          if (!('QMP' in msg)) return finish(new QmpError(`QMP ${socketPath}: expected the greeting, got ${line.slice(0, 200)}`));
          next();
        } else if ('error' in msg) {
          const e = msg.error as { class?: string; desc?: string };
          const what = step === 0 ? 'qmp_capabilities' : commands[step - 1]!.execute;
          return finish(new QmpError(`QMP ${what}: ${e.class ?? 'Error'}: ${e.desc ?? line.slice(0, 200)}`));
        } else if ('return' in msg) {
          if (step >= 1) results.push(msg.return);
          next();
        }
      }
    });
    sock.on('error', (err) => finish(new QmpError(`QMP ${socketPath}: ${err.message}`)));
    // `quit` closes the socket without always answering first: what was answered is the result
    sock.on('close', () => (step > commands.length || commands[step - 1]?.execute === 'quit' ? finish() : finish(new QmpError(`QMP ${socketPath}: closed by QEMU before answering`))));
    sock.on('connect', () => undefined);
  });
}
