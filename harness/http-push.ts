// The http-push scenario's sender: autocannon drives POST /api/send at a fixed rate (the HTTP
// push of the go-pusher articles' /send) while the clients measure the fan-out. Each body carries a probe, so the
// clients time the delivery like any other message; autocannon's own latency shows how long
// the server's event loop kept an HTTP request waiting.
import autocannon from 'autocannon';
import { encodeProbe, nowUs } from '../auto-client/probe.ts';

/** The sender id HTTP-pushed probes carry (worker clients use ids below it). */
export const HTTP_SENDER_ID = 1_000_000;

export interface HttpPushResult {
  /** Requests the schedule asked for: rate × duration. */
  planned: number;
  /** Requests answered 2xx: messages the server accepted. */
  ok: number;
  non2xx: number;
  errors: number;
  latencyMs: { p50: number; p99: number; max: number };
}

export async function pushOverHttp(apiUrl: string, room: string, perSecond: number, durationS: number, sizeBytes: number, epochNs: bigint): Promise<HttpPushResult> {
  let seq = 0;
  const result = await autocannon({
    url: apiUrl,
    // One connection, no pipelining: requests reach the server in sequence order.
    connections: 1,
    pipelining: 1,
    overallRate: perSecond,
    duration: durationS,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => {
          const now = nowUs(epochNs);
          const content = encodeProbe({ sender: HTTP_SENDER_ID, seq: seq++, intendedUs: now, sentUs: now }, sizeBytes);
          return { ...req, body: JSON.stringify({ room, content }) };
        },
      },
    ],
  });
  return {
    planned: Math.round(perSecond * durationS),
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
  };
}
