import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';
const dom = new JSDOM('<!doctype html><html><body></body></html>', { pretendToBeVisual: true });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
for (const k of ['DOMParser', 'Element', 'HTMLElement', 'Node', 'navigator']) {
  if (!(k in globalThis)) { try { globalThis[k] = dom.window[k]; } catch (e) {} }
}
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });
let failed = 0;
for (const f of process.argv.slice(2)) {
  const text = readFileSync(f, 'utf8');
  try {
    const r = await mermaid.parse(text);
    console.log(f, 'OK', JSON.stringify(r));
  } catch (e) {
    failed++;
    console.log(f, 'FAIL', String(e && e.message || e));
  }
}
// negative control: broken text must fail
try { await mermaid.parse('stateDiagram-v2\n  a --> : :: -->'); console.log('control: unexpectedly parsed'); failed++; }
catch (e) { console.log('control: broken text rejected as expected'); }
process.exit(failed ? 1 : 0);
