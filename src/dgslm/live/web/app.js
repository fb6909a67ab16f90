// dgslm live page: microphone -> WebSocket (16-bit PCM, 20 ms frames) -> the model's voice back,
// a scrolling timeline of both channels and the measured latencies. Protocol: docs/live-serve.md.
"use strict";

const ACTIVE_DB = -45; // a 20 ms frame louder than this counts as speech on the timeline
const PREBUFFER_FRAMES = 3; // jitter buffer: playback starts with 60 ms queued
const MAX_FRAMES = 6; // and never lets more than 120 ms pile up (clock drift, bursts)

const $ = (id) => document.getElementById(id);
// the page's state, also read by the browser test
const live = (window.dgslmLive = {
  sent: 0, received: 0, drawn: 0, personActive: 0, modelActive: 0, closeCode: null, closeReason: "", rtt: [],
});

function levelDb(pcm) {
  let sum = 0;
  for (let i = 0; i < pcm.length; i++) sum += pcm[i] * pcm[i];
  const rms = Math.sqrt(sum / pcm.length) / 32768;
  return 20 * Math.log10(rms + 1e-9);
}

// Two lanes (you on top, the model below), one pixel column per 20 ms frame, scrolling left.
class Timeline {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.clear();
  }

  clear() {
    const { ctx, canvas } = this;
    ctx.fillStyle = "#fafafa";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    this.axes();
  }

  axes() {
    const { ctx, canvas } = this;
    ctx.fillStyle = "#ddd";
    ctx.fillRect(0, canvas.height / 2, canvas.width, 1);
  }

  lane(x, top, height, db, color) {
    const level = Math.max(0, Math.min(1, (db + 70) / 60));
    const bar = Math.max(1, Math.round(level * (height - 6)));
    this.ctx.fillStyle = db > ACTIVE_DB ? color : "#cfd8dc";
    this.ctx.fillRect(x, top + (height - bar) / 2, 1, bar);
  }

  push(personDb, modelDb) {
    const { ctx, canvas } = this;
    const w = canvas.width;
    const h = canvas.height / 2;
    ctx.drawImage(canvas, 1, 0, w - 1, canvas.height, 0, 0, w - 1, canvas.height);
    ctx.fillStyle = "#fafafa";
    ctx.fillRect(w - 1, 0, 1, canvas.height);
    live.personActive += personDb > ACTIVE_DB;
    live.modelActive += modelDb > ACTIVE_DB;
    this.lane(w - 1, 0, h, personDb, "#1e88e5");
    this.lane(w - 1, h, h, modelDb, "#e65100");
    ctx.fillStyle = "#ddd";
    ctx.fillRect(w - 1, h, 1, 1);
    live.drawn++;
  }
}

const timeline = new Timeline($("timeline"));
let ws = null;
let audio = null;
let stream = null;
let statsTimer = null;
let stopping = false; // Stop pressed: no more frames are sent
let algorithmicMs = 0;
let jitterMs = 0;
const pending = []; // [send time, person level] of the frames not answered yet, in order

function median(values) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function ms(v) {
  return Number.isFinite(v) ? `${v.toFixed(0)} ms` : "–";
}

function showLatency() {
  const rtt = median(live.rtt);
  const out = audio ? 1000 * ((audio.baseLatency || 0) + (audio.outputLatency || 0)) : NaN;
  $("rtt").textContent = ms(rtt);
  $("algo").textContent = ms(algorithmicMs);
  $("jitter").textContent = ms(jitterMs);
  $("outlat").textContent = ms(out);
  $("total").textContent = ms(rtt + algorithmicMs + jitterMs + (Number.isFinite(out) ? out : 0));
  live.roundTripMs = rtt;
}

function onControl(message) {
  if (message.type === "hello") {
    algorithmicMs = message.algorithmic_latency_ms;
    live.hello = message;
    $("status").textContent = `Connected (session ${message.session}). Talk!`;
  } else if (message.type === "stats") {
    const p = (v) => (Number.isFinite(v) ? v.toFixed(1) : "–");
    $("compute").textContent =
      `${p(message.compute_ms_p50)} / ${p(message.compute_ms_p95)} ms, ${message.late_frames} late, ${message.skipped_frames ?? 0} skipped`;
    if (median(live.rtt) > 1000) {
      $("status").textContent = "The server is falling behind real time: this machine computes frames slower than they come.";
    }
    live.stats = message;
  }
  showLatency();
}

function onFrame(data) {
  const [sentAt, personDb] = pending.shift() || [performance.now(), -120];
  live.rtt.push(performance.now() - sentAt);
  if (live.rtt.length > 250) live.rtt.shift();
  live.received++;
  const modelDb = levelDb(new Int16Array(data));
  audio.player.port.postMessage(data, [data]); // transferred: `data` is unusable after this
  timeline.push(personDb, modelDb);
}

function connect() {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => {
      if (typeof e.data === "string") {
        const message = JSON.parse(e.data);
        onControl(message);
        if (message.type === "hello") resolve(socket);
      } else if (audio) {
        onFrame(e.data);
      }
    };
    socket.onclose = (e) => {
      live.closeCode = e.code;
      live.closeReason = e.reason;
      reject(new Error(`connection closed: ${e.code} ${e.reason}`));
      $("status").textContent = `Session ended: ${e.code} ${e.reason || ""}`;
      teardown();
    };
  });
}

async function start() {
  $("start").disabled = true;
  stopping = false;
  try {
    ws = await connect();
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
    });
    const context = new AudioContext({ latencyHint: "interactive" });
    await context.audioWorklet.addModule("static/worklet.js");
    const frameSamples = live.hello.frame_samples;
    const capture = new AudioWorkletNode(context, "dgslm-capture", { processorOptions: { frameSamples } });
    const player = new AudioWorkletNode(context, "dgslm-player", {
      outputChannelCount: [1],
      processorOptions: { frameSamples, prebufferFrames: PREBUFFER_FRAMES, maxFrames: MAX_FRAMES },
    });
    context.createMediaStreamSource(stream).connect(capture);
    capture.connect(context.destination); // silent output: keeps the capture node running
    player.connect(context.destination);
    player.port.onmessage = (e) => {
      jitterMs = e.data.bufferedMs;
      live.player = e.data;
    };
    capture.port.onmessage = (e) => {
      if (stopping || !ws || ws.readyState !== WebSocket.OPEN) return;
      const personDb = levelDb(new Int16Array(e.data));
      ws.send(e.data);
      pending.push([performance.now(), personDb]);
      live.sent++;
    };
    context.player = player;
    audio = context;
    statsTimer = setInterval(() => ws && ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: "stats" })), 1000);
    $("stop").disabled = false;
    live.started = true;
  } catch (err) {
    $("status").textContent = `Could not start: ${err.message}`;
    teardown();
  }
}

function teardown() {
  clearInterval(statsTimer);
  statsTimer = null;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  if (audio) audio.close();
  audio = null;
  pending.length = 0;
  $("start").disabled = false;
  $("stop").disabled = true;
}

function stop() {
  $("stop").disabled = true;
  stopping = true;
  $("status").textContent = "Stopping: the server answers the frames already sent...";
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "stop" }));
  else teardown();
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
