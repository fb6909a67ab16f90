// dgslm live page, audio thread: microphone capture (resampled to 16 kHz, 20 ms int16 frames)
// and playback of the model's 16 kHz frames through a small jitter buffer.
/* global sampleRate, registerProcessor, AudioWorkletProcessor */

const TARGET_RATE = 16000;

// Windowed-sinc low-pass (Hann), cutoff in cycles per input sample, `taps` odd; sums to 1.
function lowPass(cutoff, taps) {
  const h = new Float32Array(taps);
  const mid = (taps - 1) / 2;
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    h[i] = sinc * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (taps - 1)));
    sum += h[i];
  }
  for (let i = 0; i < taps; i++) h[i] /= sum;
  return h;
}

// Microphone -> 16 kHz int16 frames posted to the page (transferred ArrayBuffers).
class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.frame = options.processorOptions.frameSamples;
    this.ratio = sampleRate / TARGET_RATE; // input samples per output sample
    this.fir = this.ratio > 1 ? lowPass(0.45 / this.ratio, 63) : Float32Array.of(1);
    this.history = new Float32Array(this.fir.length); // ring buffer of the last inputs
    this.head = 0;
    this.filtered = []; // low-passed input samples not yet consumed
    this.pos = 0; // fractional read position in `filtered`
    this.out = new Int16Array(this.frame);
    this.fill = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const x = input[0];
    const n = this.fir.length;
    for (let i = 0; i < x.length; i++) {
      this.history[this.head] = x[i];
      this.head = (this.head + 1) % n;
      let acc = 0;
      for (let k = 0; k < n; k++) acc += this.fir[k] * this.history[(this.head + k) % n];
      this.filtered.push(acc);
    }
    while (this.pos + 1 < this.filtered.length) {
      const i = Math.floor(this.pos);
      const frac = this.pos - i;
      const y = this.filtered[i] * (1 - frac) + this.filtered[i + 1] * frac;
      this.out[this.fill++] = Math.max(-32768, Math.min(32767, Math.round(y * 32767)));
      if (this.fill === this.frame) {
        const done = this.out;
        this.port.postMessage(done.buffer, [done.buffer]);
        this.out = new Int16Array(this.frame);
        this.fill = 0;
      }
      this.pos += this.ratio;
    }
    const used = Math.floor(this.pos);
    this.filtered.splice(0, used);
    this.pos -= used;
    return true;
  }
}

// 16 kHz int16 frames from the page -> speakers. Playback starts once `prebuffer` frames are
// queued (and again after an underrun); beyond `maxFrames` the oldest audio is dropped so the
// delay never grows. The queue depth is reported to the page every ~100 ms.
class PlayerProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions;
    this.frame = o.frameSamples;
    this.prebuffer = o.prebufferFrames;
    this.maxSamples = o.maxFrames * this.frame;
    this.step = TARGET_RATE / sampleRate; // 16 kHz samples per output sample
    this.queue = [];
    this.queued = 0;
    this.offset = 0; // fractional read position in queue[0]
    this.playing = false;
    this.underruns = 0;
    this.dropped = 0;
    this.sinceReport = 0;
    this.port.onmessage = (e) => {
      const pcm = new Int16Array(e.data);
      const f = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) f[i] = pcm[i] / 32768;
      this.queue.push(f);
      this.queued += f.length;
      while (this.queued - this.offset > this.maxSamples && this.queue.length > 1) {
        this.queued -= this.queue.shift().length;
        this.offset = 0;
        this.dropped++;
      }
    };
  }

  sample(k) {
    // the queued sample k positions after the read head (k = 0 or 1), 0 past the end
    let idx = Math.floor(this.offset) + k;
    for (const chunk of this.queue) {
      if (idx < chunk.length) return chunk[idx];
      idx -= chunk.length;
    }
    return 0;
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing && this.queued - this.offset >= this.prebuffer * this.frame) this.playing = true;
    for (let i = 0; i < out.length; i++) {
      if (!this.playing || this.queue.length === 0) {
        out[i] = 0;
        continue;
      }
      const frac = this.offset - Math.floor(this.offset);
      out[i] = this.sample(0) * (1 - frac) + this.sample(1) * frac;
      this.offset += this.step;
      while (this.queue.length > 0 && this.offset >= this.queue[0].length) {
        this.offset -= this.queue[0].length;
        this.queued -= this.queue.shift().length;
      }
      if (this.queue.length === 0) {
        this.playing = false;
        this.underruns++;
        this.offset = 0;
      }
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    this.sinceReport += out.length;
    if (this.sinceReport >= sampleRate / 10) {
      this.sinceReport = 0;
      this.port.postMessage({
        bufferedMs: ((this.queued - this.offset) / TARGET_RATE) * 1000,
        underruns: this.underruns,
        dropped: this.dropped,
      });
    }
    return true;
  }
}

registerProcessor("dgslm-capture", CaptureProcessor);
registerProcessor("dgslm-player", PlayerProcessor);
