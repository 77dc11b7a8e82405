// The SMART JS client (fhirclient on npm) against Coplan in Debian's chromium: an EHR launch of
// a one-page app (app/index.html, FHIR.oauth2.init), the redirect's RFC 9207 `iss` left on the
// app's URL, a relaunch from that URL in a fresh browser (no session storage, no cookies), and
// taking the app's access back on Coplan's "apps you have allowed" page. Accessibility
// (a11y.mjs) is checked on every Coplan page on the way. Prints what it saw as JSON on stdout.
//
// env: LAUNCH_URL (the app's launch URL with iss and launch), USERNAME, PASSWORD, APPS_URL,
//      APP_NAME (the app's name on Coplan's pages)
import { chromium } from 'playwright-core';
import { checkAccessible } from './a11y.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

// Wait until the app says `ready` or `error`; its status and output.
async function appResult(page) {
  await page.waitForFunction(() => {
    const s = document.getElementById('status');
    return s && (s.textContent === 'ready' || s.textContent === 'error');
  }, null, { timeout: 20000 });
  return {
    status: await page.textContent('#status'),
    out: await page.textContent('#out'),
    url: page.url(),
  };
}

// On Coplan's sign-in page: check it, sign in, check and approve the consent page.
async function signInAndAllow(page, step) {
  try {
    await page.waitForSelector('h1:has-text("Sign in to Coplan")', { timeout: 20000 });
  } catch (e) {
    throw new Error(`${step}: no sign-in page at ${page.url()}: ${await page.textContent('body')}`);
  }
  await checkAccessible(page, `${step}: sign-in page`);
  await page.getByLabel('Username').fill(env('USERNAME'));
  await page.getByLabel('Password').fill(env('PASSWORD'));
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForSelector('legend:has-text("asks to")');
  await checkAccessible(page, `${step}: consent page`);
  await page.getByRole('button', { name: 'Allow', exact: true }).click();
}

const browser = await chromium.launch({
  executablePath: process.env.COPLAN_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless=new'],
});
const seen = {};
try {
  // 1. The EHR opens the app's launch URL; the app authorizes, the user signs in and allows,
  //    Coplan redirects back with code, state and iss; the client completes and reads.
  const first = await browser.newContext({ bypassCSP: true });
  const app = await first.newPage();
  await app.goto(env('LAUNCH_URL'));
  await signInAndAllow(app, 'EHR launch');
  seen.launch = await appResult(app);

  // 2. A reload of the page the app sits at keeps working (the client's stored state).
  await app.reload();
  seen.reload = await appResult(app);

  // 3. The same address in a fresh browser (a bookmark, a new tab): the client starts a new
  //    launch with the `iss` on the URL; it must reach Coplan's sign-in, then work.
  const fresh = await browser.newContext({ bypassCSP: true });
  const again = await fresh.newPage();
  await again.goto(seen.launch.url);
  try {
    await signInAndAllow(again, 'relaunch');
    seen.relaunch = await appResult(again);
  } catch (e) {
    // What the app showed instead of Coplan's sign-in page.
    seen.relaunch = { status: 'no sign-in page', out: await again.textContent('body'), url: again.url(), error: String(e) };
  }

  // 4. The user takes the app's access back on Coplan's page (signed in from step 1).
  const apps = await first.newPage();
  await apps.goto(env('APPS_URL'));
  await checkAccessible(apps, 'apps page');
  seen.listed = (await apps.textContent('main')).includes(env('APP_NAME'));
  await apps.getByRole('button', { name: `Take back access for ${env('APP_NAME')}` }).click();
  await apps.waitForSelector('[role=status]');
  await checkAccessible(apps, 'apps page after taking access back');
  seen.notice = await apps.textContent('[role=status]');

  // 5. The app in the first browser now fails: its access token was revoked.
  await app.reload();
  seen.afterRevoke = await appResult(app);
  process.stdout.write(JSON.stringify(seen) + '\n');
} finally {
  await browser.close();
}
