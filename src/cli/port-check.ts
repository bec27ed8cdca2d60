// `serve` checks its address before loading the model: binding a throwaway listener on host:port
// and closing it again turns "port taken" (and "not allowed", "no such address") into a clear
// typed error at once, instead of an internal error after a long model load. A race with another
// process between this check and the real listen is possible; that one still fails at listen.
import { createServer } from 'node:net';
import { TokenmillError } from '../util/errors.js';

export async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const srv = createServer();
  await new Promise<void>((resolvePromise, reject) => {
    srv.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE')
        reject(
          new TokenmillError(
            'port_in_use',
            `port ${port} is in use on ${host} (another process listens there): stop it or pass another --port`,
            { param: '--port', cause: e },
          ),
        );
      else if (e.code === 'EACCES')
        reject(
          new TokenmillError(
            'invalid_argument',
            `port ${port} on ${host}: permission denied (ports below 1024 need privileges): pass another --port`,
            { param: '--port', cause: e },
          ),
        );
      else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN')
        reject(
          new TokenmillError('invalid_argument', `--host ${host}: not an address of this machine (${e.code})`, {
            param: '--host',
            cause: e,
          }),
        );
      else reject(e);
    });
    srv.listen({ host, port, exclusive: true }, () => resolvePromise());
  });
  await new Promise<void>((r) => srv.close(() => r()));
}
