// Drives VS Code (code-server) in headless Chromium as a user would: opens the file, waits for gradfix's squiggle and
// its entry in the Problems panel, opens the quick-fix menu on it, applies the fix, then runs "gradfix: Diagnose this
// file" on the fixed program and waits for its outcome. Prints what it saw as JSON; screenshots go to SCREENSHOT_DIR.
// Usage: node drive.cjs URL FILE_NAME FIX_TITLE_PREFIX SCREENSHOT_DIR  (CHROMIUM names the browser)
const puppeteer = require("puppeteer-core");

const [url, fileName, fixTitle, shots] = process.argv.slice(2);
const WAIT = 90000;
const seen = { steps: [] };
const started = Date.now();

function step(name) {
  seen.steps.push(`${name} ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

async function palette(page, text) {
  // F1 opens the Command Palette with ">"; without it the same box opens files (and ":N" goes to a line).
  await page.keyboard.press("F1");
  await page.waitForSelector(".quick-input-widget .quick-input-box input", { visible: true });
  await page.keyboard.down("Control");
  await page.keyboard.press("a");
  await page.keyboard.up("Control");
  await page.keyboard.type(text, { delay: 20 });
}

async function main() {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"],
    defaultViewport: { width: 1400, height: 900 },
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(WAIT);
    await page.goto(url, { waitUntil: "domcontentloaded" });
    await page.waitForSelector(".monaco-workbench .part.editor", { visible: true });
    step("workbench");

    // Open the file by name, as Go to File does.
    await palette(page, fileName);
    await page.waitForFunction(
      (name) => [...document.querySelectorAll(".quick-input-list .monaco-list-row")].some((row) => row.textContent.includes(name)),
      {}, fileName);
    await page.keyboard.press("Enter");
    await page.waitForSelector(`.tab.active[aria-label*="${fileName}"]`, { visible: true });
    step("opened");

    // The squiggle, drawn from the server's diagnostic.
    const squiggle = await page.waitForSelector(".monaco-editor .squiggly-error, .monaco-editor .squiggly-warning", { visible: true });
    step("squiggle");

    // The Problems panel lists the finding with its rule code.
    await palette(page, ">View: Focus Problems");
    await page.waitForFunction(() => [...document.querySelectorAll(".quick-input-list .monaco-list-row")].length > 0);
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => /GF\d{3}/.test(document.querySelector(".markers-panel")?.textContent ?? ""));
    seen.problems = await page.$$eval(".markers-panel .monaco-list-row", (rows) => rows.map((row) => row.textContent));
    step("problems");

    // Put the cursor on the squiggle and show its hover: what a user sees when pointing at it.
    const box = await squiggle.boundingBox();
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2 - 4);
    await page.waitForFunction(() => [...document.querySelectorAll(".monaco-hover")].some((hover) => hover.textContent.includes("GF001")));
    seen.hover = await page.$$eval(".monaco-hover", (hovers) => hovers.map((hover) => hover.textContent).join("\n"));
    await page.screenshot({ path: `${shots}/vscode-squiggle.png` });
    step("screenshot-squiggle");
    await page.mouse.move(5, 5);

    // The quick-fix menu (Ctrl+.) at the cursor.
    await page.keyboard.press("Escape");
    await page.keyboard.down("Control");
    await page.keyboard.press("Period");
    await page.keyboard.up("Control");
    await page.waitForFunction(
      (title) => [...document.querySelectorAll(".action-widget .monaco-list-row")].some((row) => row.textContent.includes(title)),
      {}, fixTitle);
    seen.quickFixes = await page.$$eval(".action-widget .monaco-list-row", (rows) => rows.map((row) => row.textContent.trim()).filter(Boolean));
    await page.screenshot({ path: `${shots}/vscode-quickfix.png` });
    step("quick-fix-menu");

    // Apply the fix by clicking its entry, then save the file.
    const rows = await page.$$(".action-widget .monaco-list-row");
    for (const row of rows) {
      if ((await row.evaluate((element) => element.textContent)).includes(fixTitle)) {
        await row.click();
        break;
      }
    }
    // The edit removes the squiggled line: the squiggle goes with it.
    await page.waitForFunction(() => !document.querySelector(".monaco-editor .squiggly-error, .monaco-editor .squiggly-warning"));
    step("applied");
    // VS Code saves a file a code action edited (files.refactoring.autoSave); save it by hand where it did not.
    if (await page.$(".tab.active.dirty")) {
      await page.keyboard.down("Control");
      await page.keyboard.press("s");
      await page.keyboard.up("Control");
    }
    await page.waitForFunction(() => !document.querySelector(".tab.active.dirty"));
    step("saved");
    // The fixed program has no finding left, once the server has read it again.
    await page.waitForFunction(() => /No problems have been detected/.test(document.querySelector(".part.panel")?.textContent ?? ""));
    step("clean");
    await page.screenshot({ path: `${shots}/vscode-fixed.png` });

    // gradfix: Diagnose this file runs the program under the runtime detector, with a progress notification.
    await palette(page, ">gradfix: Diagnose this file");
    await page.waitForFunction(() => [...document.querySelectorAll(".quick-input-list .monaco-list-row")].some((row) => row.textContent.includes("gradfix: Diagnose this file")));
    await page.keyboard.press("Enter");
    const messages = () => [...document.querySelectorAll(".notifications-toasts .notification-list-item-message")]
      .map((message) => message.textContent).join("\n");
    await page.waitForFunction(`(${messages})().includes("gradfix: diagnosing train.py")`);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // the notification fades in
    await page.screenshot({ path: `${shots}/vscode-diagnose.png` });
    step("diagnosing");
    await page.waitForFunction(`/gradfix: \\S+\\.py: |could not diagnose/.test((${messages})())`, { timeout: 240000 });
    seen.diagnosis = await page.evaluate(messages);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await page.screenshot({ path: `${shots}/vscode-diagnosed.png` });
    step("diagnosed");
  } catch (error) {
    seen.error = String(error && error.stack || error);
    const pages = await browser.pages();
    if (pages.length > 0) {
      await pages[pages.length - 1].screenshot({ path: `${shots}/vscode-failure.png` }).catch(() => undefined);
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(seen) + "\n");
}

main();
