// Takes docs/screenshot.png: the page in Debian's Chromium during a chat, connected: a rename, a
// mixed-script message, a message with a link, and a private message in its own list.
//   node --import tsx scripts/page-screenshot.ts
import { launchChromium } from '../test/browser.ts';
import { openClient } from '../test/helpers.ts';
import { startVersion } from '../versions/versions.ts';

const v3 = await startVersion('v3', { port: 0 });
const browser = await launchChromium();
try {
  const page = await (await browser.newContext({ viewport: { width: 1100, height: 980 } })).newPage();
  await page.goto(v3.url);
  await page.waitForFunction(() => (document.getElementById('name') as HTMLInputElement).value !== '');
  await page.fill('#name', 'ann');
  await page.click('#join-button');
  const guest = await openClient(v3, {});
  guest.send({ type: 'join', room: 'lobby', name: 'بوب' }); // a rename, in Arabic
  await guest.waitFor(() => guest.ofType('joined').length === 2, 'renamed');
  guest.send({ type: 'chat', content: 'مرحبا ann, the build took 12 s' });
  for (const t of ['hello بوب', 'שלום and hello: 3 scripts, one line each']) {
    await page.fill('#text', t);
    await page.press('#text', 'Enter');
  }
  guest.send({ type: 'chat', content: 'the report', media: 'link', url: 'http://127.0.0.1:8083/' });
  guest.send({ type: 'direct', to: 'ann', content: 'lunch at one?' });
  await page.click('#members li:has-text("بوب") button.dm');
  await page.fill('#text', 'yes, see you there');
  await page.press('#text', 'Enter');
  await page.waitForTimeout(2_500); // the counters fill a few seconds
  await page.screenshot({ path: 'docs/screenshot.png', fullPage: true });
  console.log('docs/screenshot.png');
  await guest.close();
} finally {
  await browser.close();
  await v3.close();
}
