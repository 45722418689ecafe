// The framewise browser app: one WebSocket shared by the live view and the file view.
import { Connection } from './connection.ts';
import { FileView } from './file-view.ts';
import { LiveView } from './live-view.ts';
import { TeachView } from './teach-view.ts';

const conn = new Connection('browser');
const status = document.getElementById('conn-status')!;
conn.onStatus((text, ok) => {
  status.textContent = text;
  status.className = `status ${ok ? 'ok' : 'bad'}`;
});
conn.whenReady(() => {
  const m = conn.welcome!.model;
  document.getElementById('model-info')!.textContent = m.classes.length
    ? `${m.classes.length} classes · ${m.embedderId}${m.fps ? ` · trained at ${m.fps} fps` : ''}`
    : `no model yet (teach one) · ${m.embedderId}`;
});

// A taught model went live: a new session picks it up (model info, legend, a zero state).
conn.on((m) => {
  if (m.type === 'teach' && m.status === 'ready') conn.reconnect();
});
new LiveView(conn);
new FileView(conn);
const teach = new TeachView();

type View = 'live' | 'file' | 'teach';
const NAMES: View[] = ['live', 'file', 'teach'];
const tabs = Object.fromEntries(NAMES.map((k) => [k, document.getElementById(`tab-${k}`)!])) as Record<View, HTMLElement>;
const views = Object.fromEntries(NAMES.map((k) => [k, document.getElementById(`${k}-view`)!])) as Record<View, HTMLElement>;
function show(which: View): void {
  for (const k of NAMES) {
    tabs[k].classList.toggle('active', k === which);
    views[k].hidden = k !== which;
  }
  if (which === 'teach') teach.show();
  history.replaceState(null, '', `${location.pathname}${location.search}#${which}`);
}
for (const k of NAMES) tabs[k].addEventListener('click', () => show(k));
show(NAMES.find((k) => location.hash === `#${k}`) ?? 'live');
