// The "try a voice" page: every voice of the service, grouped by language and engine and searchable; speak
// through POST /v1/audio/speech (what any OpenAI client sends). MP3 plays while it is still being
// synthesised (Media Source Extensions); the other formats play once they have arrived.
const $ = (id) => document.getElementById(id);
const form = $("speak"), text = $("text"), voiceSelect = $("voice"), filter = $("voice-filter");
const formatSelect = $("format"), speed = $("speed"), player = $("player"), status = $("status");
const download = $("download"), sayButton = $("say"), keyField = $("key-field"), keyInput = $("key");
const KEY = "ef-speech-key", RECENT = "ef-speech-recent", EXT = {opus: "ogg"};
const languages = new Intl.DisplayNames(["en"], {type: "language"});
let voices = [], defaultVoice = "", objectUrls = [];
// what the last answer did, for whoever looks (the browser tests too)
window.tryState = {};

function headers() {
  const h = {"content-type": "application/json"};
  const key = localStorage.getItem(KEY);
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

function show(message, error = false) {
  status.textContent = message;
  status.classList.toggle("error", error);
}

function askForKey(message) {
  keyField.hidden = false;
  keyInput.value = localStorage.getItem(KEY) || "";
  keyInput.focus();
  show(message, true);
}

function languageName(code) {
  try { return languages.of(code) || code; } catch { return code; }
}

async function loadVoices() {
  const resp = await fetch("/v1/audio/voices", {headers: headers()});
  if (resp.status === 401 || resp.status === 403) {
    askForKey("This server asks for an API key: enter it to list the voices and speak.");
    return;
  }
  const body = await resp.json();
  voices = body.voices;
  defaultVoice = body.default;
  renderVoices();
}

function renderVoices() {
  const words = filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const keep = voiceSelect.value || defaultVoice;
  const groups = new Map();
  for (const v of voices) {
    const language = languageName(v.language);
    const haystack = `${v.name} ${v.id} ${v.language} ${language} ${v.engine}`.toLowerCase();
    if (!words.every((w) => haystack.includes(w))) continue;
    const group = `${language} · ${v.engine}`;
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(v);
  }
  const options = [...groups.keys()].sort().map((label) => {
    const group = document.createElement("optgroup");
    group.label = label;
    for (const v of groups.get(label)) group.append(new Option(v.name, v.id, false, v.id === keep));
    return group;
  });
  voiceSelect.replaceChildren(...options);
  voiceSelect.disabled = options.length === 0;
}

async function streamInto(resp, type, started) {
  // MP3 into a MediaSource: the player starts with the first sentence, the rest is appended as it comes
  const source = new MediaSource();
  player.src = remember(URL.createObjectURL(source));
  await new Promise((opened) => source.addEventListener("sourceopen", opened, {once: true}));
  const buffer = source.addSourceBuffer(type);
  const append = (chunk) => new Promise((done, failed) => {
    buffer.addEventListener("updateend", done, {once: true});
    buffer.addEventListener("error", failed, {once: true});
    buffer.appendBuffer(chunk);
  });
  const reader = resp.body.getReader(), parts = [];
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    parts.push(value);
    await append(value);
    if (parts.length === 1) {
      window.tryState.firstAudioMs = performance.now() - started;
      player.play().catch(() => {});
    }
  }
  source.endOfStream();
  return new Blob(parts, {type});
}

function remember(url) {
  objectUrls.push(url);
  return url;
}

function saveRecent(phrase) {
  const recent = [phrase, ...JSON.parse(localStorage.getItem(RECENT) || "[]").filter((p) => p !== phrase)];
  localStorage.setItem(RECENT, JSON.stringify(recent.slice(0, 8)));
  renderRecent();
}

function renderRecent() {
  const recent = JSON.parse(localStorage.getItem(RECENT) || "[]");
  $("recent").replaceChildren(...recent.map((phrase) => {
    const item = document.createElement("li"), button = document.createElement("button");
    button.type = "button";
    button.textContent = phrase.length > 90 ? `${phrase.slice(0, 90)}…` : phrase;
    button.addEventListener("click", () => { text.value = phrase; text.focus(); });
    item.append(button);
    return item;
  }));
  if (!recent.length) $("recent").append(Object.assign(document.createElement("li"), {textContent: "None yet."}));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const phrase = text.value.trim();
  if (!phrase) {
    show("Type something to say first.", true);
    text.focus();
    return;
  }
  const format = formatSelect.value;
  const body = {model: "tts-1", input: phrase, voice: voiceSelect.value || undefined, response_format: format,
                speed: Number(speed.value)};
  objectUrls.forEach((url) => URL.revokeObjectURL(url));
  objectUrls = [];
  download.hidden = true;
  sayButton.disabled = true;
  const started = performance.now();
  window.tryState = {startedAt: started};
  show("Speaking…");
  try {
    const resp = await fetch("/v1/audio/speech", {method: "POST", headers: headers(), body: JSON.stringify(body)});
    if (!resp.ok) {
      const problem = await resp.json().catch(() => ({}));
      if (resp.status === 401 || resp.status === 403) askForKey("This server asks for an API key.");
      throw new Error(problem.error?.message || `the server answered ${resp.status}`);
    }
    const type = (resp.headers.get("content-type") || "audio/mpeg").split(";")[0];
    const streams = format === "mp3" && window.MediaSource?.isTypeSupported("audio/mpeg") && resp.body;
    let blob;
    if (streams) {
      blob = await streamInto(resp, type, started);
    } else {
      blob = await resp.blob();
      window.tryState.firstAudioMs = performance.now() - started;
      player.src = remember(URL.createObjectURL(blob));
      player.play().catch(() => {});
    }
    const tookMs = Math.round(performance.now() - started);
    window.tryState.finishedMs = tookMs;
    download.href = remember(URL.createObjectURL(blob));
    download.download = `speech.${EXT[format] || format}`;
    download.textContent = `Download (${format.toUpperCase()}, ${Math.round(blob.size / 1024)} KB)`;
    download.hidden = false;
    const engine = resp.headers.get("x-tts-engine") || "?";
    const fallback = resp.headers.get("x-tts-fallback") === "true" ? " (as the fallback)" : "";
    const cached = resp.headers.get("x-cache") === "hit" ? "from the cache" : "synthesised";
    show(`Spoken by ${engine}${fallback}, ${cached}: first audio after ${Math.round(window.tryState.firstAudioMs)} ms, ` +
         `all of it after ${tookMs} ms.`);
    saveRecent(phrase);
  } catch (err) {
    show(`Could not speak: ${err.message}`, true);
  } finally {
    sayButton.disabled = false;
  }
});

player.addEventListener("playing", () => {
  const state = window.tryState;
  if (state.startedAt !== undefined && state.playingMs === undefined) state.playingMs = performance.now() - state.startedAt;
});
filter.addEventListener("input", renderVoices);
speed.addEventListener("input", () => { $("speed-value").textContent = `${Number(speed.value).toFixed(2)}×`; });
keyInput.addEventListener("change", () => {
  localStorage.setItem(KEY, keyInput.value.trim());
  loadVoices().then(() => { if (voices.length) show("Key saved in this browser."); });
});
renderRecent();
loadVoices().catch((err) => show(`Could not list the voices: ${err.message}`, true));
