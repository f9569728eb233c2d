// Labeeb's web page: chat with streamed answers, images, push-to-talk and spoken answers.
// It talks to the same OpenAI-compatible API as any other client; nothing here is special.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_EDGE = 2048; // the model never sees more (vision.preprocess.max_size)
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];

const state = {
  messages: [],      // the conversation, in OpenAI's message format
  attachments: [],   // data: URLs waiting to be sent
  controller: null,  // aborts the answer being streamed
  features: {},
};

// -- talking to the server ----------------------------------------------------------------

function headers(extra = {}) {
  const key = localStorage.getItem("labeeb.apiKey") || "";
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return (body.error && body.error.message) || JSON.stringify(body);
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

async function refreshHealth() {
  const status = $("status");
  try {
    const response = await fetch("/health");
    const health = await response.json();
    state.features = health.features || {};
    status.textContent = health.ready ? `ready · ${health.model}` : `${health.status} · ${health.backend_status}`;
    status.className = "status " + (health.ready ? "ok" : "bad");
    const select = $("model");
    if (!select.options.length) {
      for (const id of health.models || ["labeeb"]) {
        const option = document.createElement("option");
        option.value = id;
        option.textContent = id === "labeeb" ? "labeeb (plugins)" : `${id} (model only)`;
        select.append(option);
      }
    }
    $("screenshot").hidden = !state.features.screen;
    $("key-label").hidden = !state.features.auth;
    return health.ready;
  } catch (err) {
    status.textContent = "server unreachable";
    status.className = "status bad";
    return false;
  }
}

// -- the conversation on screen --------------------------------------------------------------

function addMessage(role, text, images = []) {
  $("hint").hidden = true;
  const box = document.createElement("div");
  box.className = `msg ${role}`;
  box.dataset.role = role;
  if (images.length) {
    const strip = document.createElement("div");
    strip.className = "images";
    for (const url of images) {
      const img = document.createElement("img");
      img.src = url;
      img.alt = "attached image";
      strip.append(img);
    }
    box.append(strip);
  }
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  box.append(body);
  $("log").append(box);
  box.scrollIntoView({ block: "end" });
  return box;
}

function addMeta(box, text, usage) {
  const meta = document.createElement("div");
  meta.className = "meta";
  const play = document.createElement("button");
  play.type = "button";
  play.textContent = "Play";
  play.title = "Read aloud";
  play.addEventListener("click", () => speak(text));
  meta.append(play);
  if (usage && usage.total_tokens) {
    const span = document.createElement("span");
    span.textContent = `${usage.prompt_tokens} + ${usage.completion_tokens} tokens`;
    meta.append(span);
  }
  box.append(meta);
}

function showError(message) {
  const box = addMessage("assistant", message);
  box.classList.add("error");
  box.dataset.role = "error";
}

// -- attachments -----------------------------------------------------------------------------

function readAsDataURL(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

async function shrink(dataUrl) {
  // Large photos are scaled down here: less to upload, and the model would do it anyway.
  const img = new Image();
  img.src = dataUrl;
  await img.decode();
  const edge = Math.max(img.naturalWidth, img.naturalHeight);
  if (edge <= MAX_EDGE) return dataUrl;
  const scale = MAX_EDGE / edge;
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(img.naturalWidth * scale);
  canvas.height = Math.round(img.naturalHeight * scale);
  canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", 0.9);
}

async function attachFiles(files) {
  for (const file of files) {
    if (!IMAGE_TYPES.includes(file.type)) {
      showError(`${file.name || "that file"} is not a PNG, JPEG, WebP or GIF image`);
      continue;
    }
    try {
      state.attachments.push(await shrink(await readAsDataURL(file)));
    } catch (err) {
      showError(`could not read ${file.name || "the image"}: ${err}`);
    }
  }
  renderAttachments();
}

function renderAttachments() {
  const row = $("attachments");
  row.replaceChildren();
  state.attachments.forEach((url, index) => {
    const thumb = document.createElement("div");
    thumb.className = "thumb";
    const img = document.createElement("img");
    img.src = url;
    img.alt = `attachment ${index + 1}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.title = "Remove";
    remove.setAttribute("aria-label", `Remove attachment ${index + 1}`);
    remove.addEventListener("click", () => {
      state.attachments.splice(index, 1);
      renderAttachments();
    });
    thumb.append(img, remove);
    row.append(thumb);
  });
}

async function takeScreenshot() {
  const response = await fetch("/api/screenshot", { headers: headers() });
  if (!response.ok) return showError(await errorText(response));
  state.attachments.push(await shrink(await readAsDataURL(await response.blob())));
  renderAttachments();
}

// -- asking ----------------------------------------------------------------------------------

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  $("input").disabled = busy;
}

async function send(text) {
  text = text.trim();
  if (!text && !state.attachments.length) return;
  const images = state.attachments.splice(0);
  renderAttachments();
  $("input").value = "";
  addMessage("user", text, images);
  const content = [...images.map((url) => ({ type: "image_url", image_url: { url } }))];
  if (text) content.push({ type: "text", text });
  state.messages.push({ role: "user", content });

  const box = addMessage("assistant", "");
  box.classList.add("streaming");
  const out = box.querySelector(".text");
  state.controller = new AbortController();
  setBusy(true);
  let answer = "";
  let usage = null;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({
        model: $("model").value || "labeeb",
        messages: state.messages,
        stream: true,
        stream_options: { include_usage: true },
      }),
      signal: state.controller.signal,
    });
    if (!response.ok) throw new Error(await errorText(response));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          if (chunk.usage) usage = chunk.usage;
          for (const choice of chunk.choices || []) {
            if (choice.delta && choice.delta.content) {
              answer += choice.delta.content;
              out.textContent = answer;
              box.scrollIntoView({ block: "end" });
            }
          }
        }
      }
    }
    state.messages.push({ role: "assistant", content: answer });
    box.classList.remove("streaming");
    box.dataset.done = "true";
    addMeta(box, answer, usage);
    if ($("speak").checked && answer.trim()) speak(answer);
  } catch (err) {
    box.classList.remove("streaming");
    if (err.name === "AbortError") {
      out.textContent = answer + " [stopped]";
      state.messages.push({ role: "assistant", content: answer });
    } else {
      box.remove();
      state.messages.pop(); // the question goes unanswered; it can be asked again
      showError(err.message || String(err));
    }
  } finally {
    state.controller = null;
    setBusy(false);
    $("input").focus();
  }
}

// -- voice -----------------------------------------------------------------------------------

async function speak(text) {
  const response = await fetch("/v1/audio/speech", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify({ model: "tts-1", voice: "alloy", input: text, response_format: "wav" }),
  });
  if (!response.ok) return showError(await errorText(response));
  const audio = new Audio(URL.createObjectURL(await response.blob()));
  audio.dataset.labeeb = "answer";
  document.body.append(audio);
  audio.addEventListener("ended", () => audio.remove());
  try { await audio.play(); } catch (_) { /* autoplay refused: the Play button still works */ }
}

const recorder = { media: null, chunks: [] };

async function startRecording() {
  if (recorder.media) return;
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    return showError("this browser cannot record audio (it needs HTTPS or localhost, and microphone access)");
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    recorder.chunks = [];
    recorder.media = new MediaRecorder(stream);
    recorder.media.addEventListener("dataavailable", (e) => e.data.size && recorder.chunks.push(e.data));
    recorder.media.addEventListener("stop", () => {
      stream.getTracks().forEach((t) => t.stop());
      transcribe(new Blob(recorder.chunks, { type: recorder.media.mimeType || "audio/webm" }));
      recorder.media = null;
    });
    recorder.media.start();
    $("mic").classList.add("recording");
  } catch (err) {
    showError(`cannot use the microphone: ${err.message || err}`);
  }
}

function stopRecording() {
  if (recorder.media && recorder.media.state !== "inactive") recorder.media.stop();
  $("mic").classList.remove("recording");
}

async function transcribe(blob) {
  const form = new FormData();
  form.append("file", blob, blob.type.includes("ogg") ? "speech.ogg" : "speech.webm");
  form.append("model", "whisper-1");
  const response = await fetch("/v1/audio/transcriptions", { method: "POST", headers: headers(), body: form });
  if (!response.ok) return showError(await errorText(response));
  const { text } = await response.json();
  if (text && text.trim()) send(text);
  else showError("I did not catch that; hold the button while you speak");
}

// -- wiring ----------------------------------------------------------------------------------

function wire() {
  $("composer").addEventListener("submit", (e) => { e.preventDefault(); send($("input").value); });
  $("input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send($("input").value); }
  });
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("attach").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", (e) => { attachFiles([...e.target.files]); e.target.value = ""; });
  $("screenshot").addEventListener("click", takeScreenshot);
  $("clear").addEventListener("click", () => {
    state.messages = [];
    state.attachments = [];
    renderAttachments();
    $("log").querySelectorAll(".msg").forEach((m) => m.remove());
    $("hint").hidden = false;
  });
  const mic = $("mic");
  mic.addEventListener("pointerdown", (e) => { e.preventDefault(); startRecording(); });
  for (const end of ["pointerup", "pointerleave", "pointercancel"]) mic.addEventListener(end, stopRecording);
  mic.addEventListener("keydown", (e) => { if (e.key === " " && !e.repeat) startRecording(); });
  mic.addEventListener("keyup", (e) => { if (e.key === " ") stopRecording(); });

  const key = $("api-key");
  key.value = localStorage.getItem("labeeb.apiKey") || "";
  key.addEventListener("change", () => localStorage.setItem("labeeb.apiKey", key.value.trim()));

  document.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData ? e.clipboardData.files : [])].filter((f) => f.type.startsWith("image/"));
    if (files.length) { e.preventDefault(); attachFiles(files); }
  });
  let depth = 0;
  const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
  document.addEventListener("dragenter", (e) => { if (hasFiles(e)) { depth++; $("drop").hidden = false; } });
  document.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) $("drop").hidden = true; });
  document.addEventListener("dragover", (e) => { if (hasFiles(e)) e.preventDefault(); });
  document.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    $("drop").hidden = true;
    attachFiles([...e.dataTransfer.files]);
  });
}

wire();
refreshHealth().then((ready) => {
  if (!ready) {
    const timer = setInterval(async () => { if (await refreshHealth()) clearInterval(timer); }, 2000);
  }
});
