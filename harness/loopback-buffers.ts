// How much a loopback TCP connection holds for a reader that stopped reading, before the writer
// feels it: the writer's send buffer, which the kernel lets grow to tcp_wmem's maximum, and the
// reader's receive buffer at its default (tcp_rmem's middle value: receive autotuning grows a
// buffer only as the application reads it, and a stuck reader reads nothing). A slow-consumer run
// must leave more than this unread, or a server that blocks on a slow reader never blocks.
import { readFileSync } from 'node:fs';
import { fmt } from '../common/helpers.ts';

export interface LoopbackBuffers {
  /** Bytes a stuck reader's connection holds in the kernel, both ends together. */
  bytes: number;
  /** Where the figure comes from, for a message or a report. */
  source: string;
}

/** Linux's defaults, for a machine whose /proc/sys/net cannot be read. */
const LINUX_DEFAULT_WMEM_MAX = 4 * 1024 * 1024;
const LINUX_DEFAULT_RMEM_DEFAULT = 128 * 1024;

let cached: LoopbackBuffers | null = null;

export function stuckReaderBuffers(): LoopbackBuffers {
  if (cached) return cached;
  const field = (file: string, index: number): number | null => {
    try {
      const v = Number(readFileSync(`/proc/sys/net/ipv4/${file}`, 'utf8').trim().split(/\s+/)[index]);
      return Number.isFinite(v) && v > 0 ? v : null;
    } catch {
      return null;
    }
  };
  const wmemMax = field('tcp_wmem', 2);
  const rmemDefault = field('tcp_rmem', 1);
  cached =
    wmemMax !== null && rmemDefault !== null
      ? { bytes: wmemMax + rmemDefault, source: `tcp_wmem max ${fmt(wmemMax)} B + tcp_rmem default ${fmt(rmemDefault)} B, from /proc/sys/net/ipv4` }
      : { bytes: LINUX_DEFAULT_WMEM_MAX + LINUX_DEFAULT_RMEM_DEFAULT, source: "Linux's default tcp_wmem max + tcp_rmem default (/proc/sys/net/ipv4 unreadable)" };
  return cached;
}
