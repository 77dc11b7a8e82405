// Drives the authorization server's sign-in, patient picker and consent pages in Debian's
// chromium (COPLAN_CHROMIUM, default /usr/bin/chromium) the way a user would: by label text and
// button names only, checking accessibility on every page (a11y.mjs: the basics and axe-core).
// Prints the callback's query parameters as JSON on stdout.
//
// env: AUTHORIZE_URL, USERNAME, PASSWORD, PATIENT_LABEL (a picker choice), UNTICK (a scope)
import { chromium } from 'playwright-core';
import { checkAccessible } from './a11y.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const browser = await chromium.launch({
  executablePath: process.env.COPLAN_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless=new'],
});
try {
  // CSP is bypassed only so that axe-core can be injected into the pages.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(env('AUTHORIZE_URL'));
  await checkAccessible(page, 'sign-in page');
  await page.getByLabel('Username').fill(env('USERNAME'));
  await page.getByLabel('Password').fill(env('PASSWORD'));
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();

  await page.waitForSelector('h1');
  if ((await page.textContent('h1')).includes('Choose a patient')) {
    await checkAccessible(page, 'patient picker');
    await page.getByLabel(env('PATIENT_LABEL')).check();
    await page.getByRole('button', { name: 'Continue' }).click();
  }

  await page.waitForSelector('legend:has-text("asks to")');
  await checkAccessible(page, 'consent page');
  if (process.env.UNTICK) {
    const box = page.locator(`input[type=checkbox][value="${process.env.UNTICK}"]`);
    await box.uncheck();
  }
  await Promise.all([
    page.waitForURL('**/auth/demo-callback**'),
    page.getByRole('button', { name: 'Allow', exact: true }).click(),
  ]);
  const params = Object.fromEntries(new URL(page.url()).searchParams);
  process.stdout.write(JSON.stringify(params) + '\n');
} finally {
  await browser.close();
}
