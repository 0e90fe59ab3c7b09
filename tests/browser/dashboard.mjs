// Drives the FG dashboard in Debian's headless Chromium and prints what the
// pages showed as one JSON object on stdout; tests/browser.rs asserts on it.
// Environment: BASE (https://localhost:PORT), FG_CERT/FG_KEY (a privacy
// officer's certificate), OTHER_CERT/OTHER_KEY (any other organisation's),
// PUPIL, optional SCREENSHOTS (a directory for PNGs), CHROMIUM (executable).
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing ${k}`);
  return v;
};
const base = env('BASE');
const shots = process.env.SCREENSHOTS;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const out = {};
try {
  // The privacy officer: client certificate presented in the TLS handshake.
  const fg = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
    clientCertificates: [{ origin: base, certPath: env('FG_CERT'), keyPath: env('FG_KEY') }],
  });
  const page = await fg.newPage();
  let resp = await page.goto(`${base}/`);
  out.home_status = resp.status();
  out.home_heading = await page.locator('h1').first().innerText();
  out.home_user = await page.locator('nav.menu .meta').innerText();

  // Search by pupil: the form posts, the URL never carries the pupil id.
  await page.click('a[href="/zoeken"]');
  await page.fill('input[name="leerling"]', env('PUPIL'));
  await Promise.all([page.waitForNavigation(), page.click('#zoek')]);
  out.search_url = page.url();
  out.search_count = await page.locator('#aantal').innerText();
  out.search_rows = await page.locator('#resultaten tbody tr').count();
  out.search_orgs = await page.locator('#resultaten tbody tr td:nth-child(2)').allInnerTexts();
  out.search_has_pupil = (await page.content()).includes(env('PUPIL'));
  if (shots) await page.screenshot({ path: `${shots}/dashboard-zoeken.png`, fullPage: true });

  // Record detail from the first result.
  await Promise.all([page.waitForNavigation(), page.locator('#resultaten a').first().click()]);
  out.record_heading = await page.locator('h1').innerText();
  out.record_text = await page.locator('dl.kenmerken').innerText();

  // Inzage for the pupil, with refused requests.
  await page.goto(`${base}/inzage`);
  await page.fill('#leerling', env('PUPIL'));
  await page.check('input[name="weigeringen"]');
  await Promise.all([page.waitForNavigation(), page.click('#maak-inzage')]);
  out.inzage_url = page.url();
  out.inzage_headings = await page.locator('h2').allInnerTexts();
  out.inzage_sections = await page.locator('section.verstrekking h3').allInnerTexts();
  out.inzage_text = await page.locator('body').innerText();
  if (shots) await page.screenshot({ path: `${shots}/dashboard-inzage.png`, fullPage: true });

  await page.goto(`${base}/verificatie`);
  out.verify_status = await page.locator('#status').innerText();
  await page.goto(`${base}/rapport`);
  out.rapport_svgs = await page.locator('svg').count();
  if (shots) await page.screenshot({ path: `${shots}/dashboard-rapport.png`, fullPage: false });

  // The emergency review queue: review the window, then release it.
  await page.goto(`${base}/spoed`);
  out.spoed_before = await page.locator('#aantal').innerText();
  out.spoed_status = await page.locator('section.venster td.status').first().innerText();
  out.spoed_why = await page.locator('section.venster td.toelichting').first().innerText();
  await page.check('form.beoordelen input[value="gerechtvaardigd"]');
  await page.fill('form.beoordelen textarea[name="notitie"]', 'acuut gevaar bevestigd door Veilig Thuis');
  await Promise.all([page.waitForNavigation(), page.click('form.beoordelen button')]);
  out.spoed_reviewed = await page.locator('#gedaan').innerText();
  out.spoed_after_review = await page.locator('#aantal').innerText();
  out.spoed_verdict = await page.locator('section.venster td.oordeel').first().innerText();
  if (shots) await page.screenshot({ path: `${shots}/dashboard-spoed.png`, fullPage: true });
  await Promise.all([page.waitForNavigation(), page.click('form.vrijgeven button')]);
  out.spoed_released = await page.locator('#gedaan').innerText();
  out.spoed_after_release = await page.locator('#aantal').innerText();
  await fg.close();

  // Any other organisation is refused.
  const other = await browser.newContext({
    ignoreHTTPSErrors: true,
    clientCertificates: [{ origin: base, certPath: env('OTHER_CERT'), keyPath: env('OTHER_KEY') }],
  });
  const p2 = await other.newPage();
  resp = await p2.goto(`${base}/zoeken`);
  out.other_status = resp.status();
  out.other_text = await p2.locator('body').innerText();
  await other.close();
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
