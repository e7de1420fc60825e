// The chat page. Plain JavaScript, no build step. Every piece of text from the server (names,
// messages, reasons) is put into the page with textContent, never as HTML.

const CLOSE_REFUSED = 4400; // the server refused the name or room: say so, don't reconnect
const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 10_000;

const $ = (id) => document.getElementById(id);
const views = { join: $('join-view'), chat: $('chat-view') };
const status = $('status');
const messages = $('messages');
const membersList = $('members');

let socket = null;
let joined = null; // { name, room } while the user wants to be in a room
let me = null; // { id, name } from the last welcome
let members = new Map();
let attempt = 0;
let retryTimer = null;
let everConnected = false;
// Who was in the room when the connection dropped: their rejoining after a server restart is
// not news, so it is not announced.
let returning = new Set();

function show(view) {
  views.join.hidden = view !== 'join';
  views.chat.hidden = view !== 'chat';
}

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function time(at) {
  return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** Append to the conversation, keeping it scrolled to the end if it was. */
function append(node) {
  const atEnd = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
  messages.append(node);
  while (messages.childElementCount > 500) messages.firstElementChild.remove();
  if (atEnd) messages.scrollTop = messages.scrollHeight;
}

function notice(text, kind = 'notice') {
  append(element('li', kind, text));
}

function said({ from, text, at }) {
  const mine = me !== null && from.id === me.id;
  const item = element('li', mine ? 'message mine' : 'message');
  const meta = element('div', 'meta');
  meta.append(element('span', 'author', mine ? 'you' : from.name), element('time', 'when', time(at)));
  item.append(meta, element('p', 'text', text));
  append(item);
}

function renderMembers() {
  membersList.replaceChildren();
  const sorted = [...members.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id - b.id);
  for (const member of sorted) {
    const item = element('li', me && member.id === me.id ? 'member me' : 'member');
    item.append(element('span', 'avatar', [...member.name][0].toUpperCase()), element('span', 'who', member.name));
    if (me && member.id === me.id) item.append(element('span', 'tag', 'you'));
    membersList.append(item);
  }
  $('member-count').textContent = `${members.size} online`;
}

function traffic(bytesPerSecond) {
  if (bytesPerSecond < 1000) return `${bytesPerSecond} B/s`;
  if (bytesPerSecond < 1_000_000) return `${(bytesPerSecond / 1000).toFixed(1)} kB/s`;
  return `${(bytesPerSecond / 1_000_000).toFixed(1)} MB/s`;
}

/** The server's figures (from its metrics), every couple of seconds. */
function showFigures({ connections, rooms, messagesPerSecond, sentPerSecond, bytesPerSecond, messagesTotal }) {
  $('figure-connections').textContent = String(connections);
  $('figure-rate').textContent = String(messagesPerSecond);
  $('figure-sent').textContent = String(sentPerSecond);
  $('figure-traffic').textContent = traffic(bytesPerSecond);
  $('figure-total').textContent = String(messagesTotal);
  $('figure-rooms').textContent = String(rooms);
}

function connect() {
  clearTimeout(retryTimer);
  const url = new URL('ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('name', joined.name);
  url.searchParams.set('room', joined.room);
  setStatus('connecting', everConnected ? 'reconnecting…' : 'connecting…');
  const ws = new WebSocket(url);
  socket = ws;

  ws.addEventListener('message', (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (data.type) {
      case 'welcome':
        me = data.you;
        members = new Map(data.members.map((member) => [member.id, member]));
        for (const member of data.members) returning.delete(member.name);
        setTimeout(() => returning.clear(), 30_000);
        attempt = 0;
        $('room-name').textContent = `#${data.room}`;
        document.title = `#${data.room} · humphrey-ws chat`;
        renderMembers();
        setStatus('open', 'connected');
        notice(everConnected ? `reconnected to #${data.room}` : `you joined #${data.room} as ${me.name}`);
        everConnected = true;
        break;
      case 'join':
        members.set(data.member.id, data.member);
        renderMembers();
        if (!returning.delete(data.member.name)) notice(`${data.member.name} joined`);
        break;
      case 'leave':
        if (members.delete(data.member.id)) {
          renderMembers();
          notice(`${data.member.name} left`);
        }
        break;
      case 'say':
        said(data);
        break;
      case 'stats':
        showFigures(data);
        break;
      case 'error':
        notice(data.text, 'notice error');
        break;
    }
  });

  ws.addEventListener('close', (event) => {
    if (socket !== ws) return;
    socket = null;
    if (event.code === CLOSE_REFUSED) {
      leave(event.reason || 'the server refused to join');
      return;
    }
    if (joined === null) return;
    if (me !== null) for (const member of members.values()) if (member.id !== me.id) returning.add(member.name);
    // Back off exponentially, with jitter so that a restarted server is not hit all at once.
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** attempt) * (0.75 + Math.random() / 2);
    attempt++;
    setStatus('closed', `offline · retrying in ${Math.max(1, Math.round(delay / 1000))} s`);
    if (everConnected && attempt === 1) notice('connection lost; reconnecting…', 'notice warn');
    retryTimer = setTimeout(connect, delay);
  });
}

function join(name, room) {
  joined = { name, room };
  localStorage.setItem('chat.name', name);
  localStorage.setItem('chat.room', room);
  history.replaceState(null, '', `#${encodeURIComponent(room)}`);
  messages.replaceChildren();
  members = new Map();
  returning = new Set();
  renderMembers();
  $('room-name').textContent = `#${room}`;
  show('chat');
  attempt = 0;
  everConnected = false;
  connect();
  $('say').focus();
}

function leave(reason) {
  joined = null;
  me = null;
  clearTimeout(retryTimer);
  if (socket) socket.close(1000);
  socket = null;
  setStatus('idle', 'not connected');
  $('join-error').textContent = reason || '';
  show('join');
  $('name').focus();
}

$('join-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $('name').value.trim();
  const room = $('room').value.trim().toLowerCase();
  if (!name) return;
  join(name, room || 'lobby');
});

$('say-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('say');
  const text = input.value.trim();
  if (!text || socket === null || socket.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify({ type: 'say', text }));
  input.value = '';
});

$('leave').addEventListener('click', () => leave(''));

// Prefill from the last visit, or a room in the address (#room).
$('name').value = localStorage.getItem('chat.name') ?? '';
const roomFromHash = decodeURIComponent(location.hash.slice(1));
$('room').value = roomFromHash || localStorage.getItem('chat.room') || 'lobby';
show('join');
