// Screenshots of the demo shop in headless Chromium, for docs/screenshots/.
//
// With the demo running (`cargo run -p redis-sessions-demo`), from this directory:
//   npm install playwright-core@1 && node take.mjs [base URL, default http://127.0.0.1:3000]
// It uses Debian's Chromium (apt-get install chromium); CHROMIUM names another binary.
import { chromium } from 'playwright-core';

const base = process.argv[2] ?? 'http://127.0.0.1:3000';
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium' });
const viewport = { width: 1100, height: 640 };
// Each browser names itself: the devices list shows what the user agent says.
const laptop = await browser.newContext({ viewport, userAgent: 'Chromium on a Linux laptop' });
const page = await laptop.newPage();

await page.goto(base);
await page.screenshot({ path: 'shop.png' });

// Fill the cart, then log in with "remember me": the session moves to a new token bound to the
// user, with its own timeouts, and keeps the cart; the next page shows the welcome once.
for (const tea of ['Darjeeling', 'Darjeeling', 'Sencha']) {
  await page.locator('.product', { hasText: tea }).getByRole('button', { name: 'Add to cart' }).click();
}
await page.fill('input[name=username]', 'ada');
await page.fill('input[name=password]', 'secret');
await page.check('input[name=remember]');
await page.getByRole('button', { name: 'Log in' }).click();
await page.screenshot({ path: 'logged-in.png' });

// The same user logs in on a phone too: the sessions page lists both devices.
const phone = await browser.newContext({ viewport, userAgent: 'Safari on an iPhone' });
const other = await phone.newPage();
await other.goto(base);
await other.fill('input[name=username]', 'ada');
await other.fill('input[name=password]', 'secret');
await other.getByRole('button', { name: 'Log in' }).click();

await page.goto(`${base}/sessions`);
await page.screenshot({ path: 'session.png', fullPage: true });
await browser.close();
