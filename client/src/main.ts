// The framewise browser app: one WebSocket shared by the live view and the file view.
import { Connection } from './connection.ts';
import { FileView } from './file-view.ts';
import { LiveView } from './live-view.ts';

const conn = new Connection('browser');
const status = document.getElementById('conn-status')!;
conn.onStatus((text, ok) => {
  status.textContent = text;
  status.className = `status ${ok ? 'ok' : 'bad'}`;
});
conn.whenReady(() => {
  const m = conn.welcome!.model;
  document.getElementById('model-info')!.textContent = `${m.classes.length} classes · ${m.embedderId}${m.fps ? ` · trained at ${m.fps} fps` : ''}`;
});

new LiveView(conn);
new FileView(conn);

const tabs = { live: document.getElementById('tab-live')!, file: document.getElementById('tab-file')! };
const views = { live: document.getElementById('live-view')!, file: document.getElementById('file-view')! };
function show(which: 'live' | 'file'): void {
  for (const k of ['live', 'file'] as const) {
    tabs[k].classList.toggle('active', k === which);
    views[k].hidden = k !== which;
  }
  history.replaceState(null, '', which === 'file' ? '#file' : '#live');
}
tabs.live.addEventListener('click', () => show('live'));
tabs.file.addEventListener('click', () => show('file'));
show(location.hash === '#file' ? 'file' : 'live');
