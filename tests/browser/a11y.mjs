// Accessibility checks for the authorization server's pages: the basics the pages promise
// (lang, one h1, labelled inputs, named buttons, no scripts or external assets, a CSRF token in
// every form) and axe-core's rules (npm axe-core; no violation of serious or critical impact;
// lesser ones are printed). The page's context must bypass CSP so axe can be injected.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const axePath = require.resolve('axe-core/axe.min.js');

export async function checkAccessible(page, step) {
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

  await page.addScriptTag({ path: axePath });
  const results = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    // The injected script is not part of the page.
    for (const s of document.querySelectorAll('script')) s.remove();
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.html).slice(0, 3),
    }));
  });
  const serious = results.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of results.filter((x) => !serious.includes(x))) {
    process.stderr.write(`${step}: axe ${v.impact}: ${v.id} (${v.help})\n`);
  }
  if (serious.length) {
    throw new Error(`${step}: axe-core found ${JSON.stringify(serious, null, 1)}`);
  }
  return results.length;
}
