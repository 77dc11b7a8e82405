// Drives the authorization server's sign-in, patient picker and consent pages in Debian's
// chromium (COPLAN_CHROMIUM, default /usr/bin/chromium) the way a user would: by label text and
// button names only, checking the accessibility basics on every page. Prints the callback's
// query parameters as JSON on stdout.
//
// env: AUTHORIZE_URL, USERNAME, PASSWORD, PATIENT_LABEL (a picker choice), UNTICK (a scope)
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

async function checkAccessible(page, step) {
  const problems = await page.evaluate(() => {
    const out = [];
    if (!document.documentElement.lang) out.push('html has no lang');
    if (document.querySelectorAll('h1').length !== 1) out.push('not exactly one h1');
    if (!document.title) out.push('no title');
    for (const input of document.querySelectorAll('input:not([type=hidden])')) {
      const labelled = (input.id && document.querySelector(`label[for="${input.id}"]`)) ||
        input.closest('label') || input.getAttribute('aria-label');
      if (!labelled) out.push(`input ${input.name || input.id} has no label`);
    }
    for (const button of document.querySelectorAll('button')) {
      if (!button.textContent.trim()) out.push('a button has no text');
    }
    if (document.querySelector('script, link[rel=stylesheet], img[src^=http]')) {
      out.push('external or scripted assets');
    }
    for (const form of document.querySelectorAll('form')) {
      if (!form.querySelector('input[name=csrf]')) out.push('a form without a CSRF token');
    }
    return out;
  });
  if (problems.length) throw new Error(`${step}: ${problems.join('; ')}`);
}

const browser = await chromium.launch({
  executablePath: process.env.COPLAN_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless=new'],
});
try {
  const page = await browser.newPage();
  await page.goto(env('AUTHORIZE_URL'));
  await checkAccessible(page, 'sign-in page');
  await page.getByLabel('Username').fill(env('USERNAME'));
  await page.getByLabel('Password').fill(env('PASSWORD'));
  await page.getByRole('button', { name: 'Sign in' }).click();

  await page.waitForSelector('h1');
  if ((await page.textContent('h1')).includes('Choose a patient')) {
    await checkAccessible(page, 'patient picker');
    await page.getByLabel(env('PATIENT_LABEL')).check();
    await page.getByRole('button', { name: 'Continue' }).click();
  }

  await page.waitForSelector('text=The app asks to');
  await checkAccessible(page, 'consent page');
  if (process.env.UNTICK) {
    const box = page.locator(`input[type=checkbox][value="${process.env.UNTICK}"]`);
    await box.uncheck();
  }
  await Promise.all([
    page.waitForURL('**/auth/demo-callback**'),
    page.getByRole('button', { name: 'Allow' }).click(),
  ]);
  const params = Object.fromEntries(new URL(page.url()).searchParams);
  process.stdout.write(JSON.stringify(params) + '\n');
} finally {
  await browser.close();
}
