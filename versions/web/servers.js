// @ts-check
// The server selector: the workbench's versions on their default ports, each polled for whether it
// is up and how it signs people in. Browsing it connects nowhere; Connect (or Enter) does.
import { $, $field } from './state.js';

/** The workbench's versions and their default ports (versions/versions.ts; v4: its first two nodes). */
const VERSIONS = [
  ['v1', 8081],
  ['v2', 8082],
  ['v3', 8083],
  ['v4 n1', 8084],
  ['v4 n2', 8085],
];

/** What each address's /healthz said: its describe line (null: not answering), and its sign-in (none, dev, jwt). */
const statuses = new Map();
const auths = new Map();

function serverOptions() {
  const host = location.hostname;
  const options = VERSIONS.map(([label, port]) => ({ label, address: `${host}:${port}` }));
  if (!options.some((o) => o.address === location.host)) options.unshift({ label: 'this server', address: location.host });
  return options;
}

/** @param {string} current */
export function renderSelect(current) {
  const select = /** @type {HTMLSelectElement} */ ($('server-select'));
  const chosen = select.value || current;
  select.replaceChildren(
    ...serverOptions().map((o) => {
      const opt = document.createElement('option');
      opt.value = o.address;
      const s = statuses.get(o.address);
      opt.textContent = `${o.label} · ${s === undefined ? '…' : s ? 'up' : 'down'}`;
      return opt;
    }),
  );
  if (Array.from(select.options).some((o) => o.value === chosen)) select.value = chosen;
  renderServerDetails();
}

export function renderServerDetails() {
  const address = $field('server-select').value;
  const s = statuses.get(address);
  $('server-details').textContent = `${address}${s ? ` · ${s}` : s === null ? ' · not answering' : ''}`;
}

/** @param {string} address */
async function probe(address) {
  try {
    const res = await fetch(`http://${address}/healthz`, { signal: AbortSignal.timeout(1500) });
    const h = await res.json();
    statuses.set(address, h.describe);
    auths.set(address, h.auth ?? 'none');
  } catch {
    statuses.set(address, null);
  }
}

/** @param {string} current */
export async function pollServers(current) {
  await Promise.all(serverOptions().map((o) => probe(o.address)));
  renderSelect(current);
}

/**
 * How `address` signs people in ('none', 'dev', 'jwt'; null: not known). A listed server is asked
 * if the page does not know yet; a custom address only ever answers a poll (the page probes no
 * address the user has not listed).
 */
/** @param {string} address */
export async function authOf(address) {
  if (!auths.has(address) && serverOptions().some((o) => o.address === address)) await probe(address);
  return auths.get(address) ?? null;
}
