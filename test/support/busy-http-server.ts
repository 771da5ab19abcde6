/**
 * A server made by createHttpServer whose event loop can be kept busy on request, as a long
 * statement on the embedded database keeps Muster's: `GET /?busyAfterMs=A&busyMs=B` answers
 * "ok" at once, then A ms later blocks the loop for B ms; without them it only answers.
 * Usage: node --import tsx busy-http-server.ts <serverTimeoutMs> <advertisedSeconds>; prints
 * the port when listening.
 */
import { createHttpServer } from '../../server/http/http-server.js';

const [serverTimeoutMs, advertisedSeconds] = process.argv.slice(2).map(Number);
const server = createHttpServer(
  (request, response) => {
    const query = new URL(request.url ?? '/', 'http://localhost').searchParams;
    const busyMs = Number(query.get('busyMs') ?? 0);
    request.resume();
    request.on('end', () => {
      response.end('ok');
      if (busyMs === 0) return;
      // Busy in the check phase, as after I/O: the loop then runs its timers before it reads
      // the sockets again. (Busy in a timer callback, it would read them first.)
      const beBusy = () => {
        const until = Date.now() + busyMs;
        while (Date.now() < until) {
          // Busy: no timer and no socket of this server is served meanwhile.
        }
      };
      setTimeout(() => setImmediate(beBusy), Number(query.get('busyAfterMs') ?? 0));
    });
  },
  { serverTimeoutMs: serverTimeoutMs ?? 0, advertisedSeconds: advertisedSeconds ?? 0 },
);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address !== 'string') console.log(`port ${address.port}`);
});
