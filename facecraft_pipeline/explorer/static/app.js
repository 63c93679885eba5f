/* FaceCraft explorer: one page for both the served explorer (renders on the local Python server)
   and the static site (renders in the browser with onnxruntime-web). Nothing here reaches any
   other host. window.explorer is the hook the tests and the latency benchmark drive. */
(function () {
  "use strict";
  const MODE = window.FACECRAFT_MODE || "served";
  const $ = (sel) => document.querySelector(sel);
  const DIAG = { paints: [], renders: 0, errors: 0 };

  // ---- mulberry32 and gene mixing: the same numbers as facecraft_pipeline/gan/mixing.py ----------
  function mulberry32(seed) {
    let a = seed >>> 0;
    return function () {
      a = (a + 0x6D2B79F5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t = ((t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t) >>> 0;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  function mixGenes(a, b, seed, ca, cb, pB) {
    pB = pB === undefined ? 0.5 : pB;
    if (a.length !== b.length) throw new Error("parents have latents of different sizes: made by different models?");
    const draw = mulberry32(seed);
    const latentFrom = a.map(() => (draw() < pB ? 1 : 0));
    const controlsFrom = ca.map(() => (draw() < pB ? 1 : 0));
    return {
      latent: latentFrom.map((p, i) => (p ? b[i] : a[i])),
      controls: controlsFrom.map((p, i) => (p ? cb[i] : ca[i])),
      latent_from: latentFrom,
    };
  }
  function gaussian(n) {
    const out = new Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = 1 - Math.random(), v = Math.random();
      const r = Math.sqrt(-2 * Math.log(u));
      out[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
    return out;
  }

  async function api(method, path, body) {
    const response = await fetch(path, { method, headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined });
    const kind = response.headers.get("Content-Type") || "";
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      if (kind.includes("json")) message = (await response.json()).error || message;
      throw new Error(message);
    }
    return kind.includes("json") ? response.json() : response.arrayBuffer();
  }

  // ---- backends ---------------------------------------------------------------------------------
  const servedBackend = {
    async init() { return api("GET", "/api/model"); },
    async load(uri) { return api("POST", "/api/load", { uri }); },
    async versions() { return api("GET", "/api/models"); },
    async render(latent, controls, resolution, identity) {
      const rgb = new Uint8Array(await api("POST", "/api/render", { latent, controls, person: identity.person, t: identity.t }));
      const rgba = new Uint8ClampedArray(resolution * resolution * 4);
      for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) { rgba[j] = rgb[i]; rgba[j + 1] = rgb[i + 1]; rgba[j + 2] = rgb[i + 2]; rgba[j + 3] = 255; }
      return new ImageData(rgba, resolution, resolution);
    },
    async characters() { return (await api("GET", "/api/characters")).characters; },
    async save(character) { return api("POST", "/api/characters", character); },
    async mix(a, b, seed) { return api("POST", "/api/mix", { a: a.name, b: b.name, seed }); },
    async gallery() { return api("GET", "/api/gallery"); },
    galleryUrl(rel) { return "/gallery/" + rel.split("/").map(encodeURIComponent).join("/"); },
  };

  function b64bytes(text) {
    const bin = atob(text), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  const STORE_KEY = "facecraft.characters";
  const memoryStore = {};
  function storeGet() {
    try { return JSON.parse(window.localStorage.getItem(STORE_KEY) || "{}"); } catch (e) { return memoryStore; }
  }
  function storeSet(all) {
    try { window.localStorage.setItem(STORE_KEY, JSON.stringify(all)); } catch (e) { Object.assign(memoryStore, all); }
  }
  const staticBackend = {
    session: null,
    async init() {
      const data = window.FACECRAFT_STATIC, wasm = window.FACECRAFT_ORT;
      if (!data || !wasm || !window.ort) throw new Error("the site is incomplete: model-data.js, ort-wasm.js or ort.wasm.min.js did not load");
      ort.env.wasm.numThreads = 1; // file:// pages are not cross-origin isolated: no wasm threads
      ort.env.wasm.proxy = false;
      ort.env.wasm.wasmBinary = b64bytes(wasm.wasm);
      ort.env.wasm.wasmPaths = { mjs: URL.createObjectURL(new Blob([wasm.mjs], { type: "text/javascript" })) };
      this.session = await ort.InferenceSession.create(b64bytes(data.onnx), { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
      return data.payload;
    },
    async render(latent, controls, resolution, identity) {
      const feeds = { z: new ort.Tensor("float32", Float32Array.from(latent), [1, latent.length]) };
      if (controls.length) feeds.controls = new ort.Tensor("float32", Float32Array.from(controls), [1, controls.length]);
      const dim = STATE.payload.model.identity_dim;
      if (dim) { // the graph morphs the owner: the picked person's centroid and t (zeros and 0: the owner's own draw)
        const people = STATE.payload.model.people, vectors = window.FACECRAFT_STATIC.people_vectors;
        const person = identity.person === null ? new Array(dim).fill(0) : vectors[people.indexOf(identity.person)];
        feeds.person = new ort.Tensor("float32", Float32Array.from(person), [1, dim]);
        feeds.t = new ort.Tensor("float32", Float32Array.from([identity.person === null ? 0 : identity.t]), [1, 1]);
      }
      const out = (await this.session.run(feeds)).image.data;
      const n = resolution * resolution, rgba = new Uint8ClampedArray(n * 4);
      for (let c = 0; c < 3; c++) {
        for (let p = 0; p < n; p++) {
          const v = Math.max(-1, Math.min(1, out[c * n + p]));
          rgba[p * 4 + c] = Math.round((v + 1) * 127.5);
        }
      }
      for (let p = 0; p < n; p++) rgba[p * 4 + 3] = 255;
      return new ImageData(rgba, resolution, resolution);
    },
    async characters() {
      const bundled = (window.FACECRAFT_STATIC.characters || []);
      const mine = Object.values(storeGet());
      const names = new Set(mine.map((c) => c.name));
      return bundled.filter((c) => !names.has(c.name)).concat(mine).sort((x, y) => x.name.localeCompare(y.name));
    },
    async save(character) {
      if (!/^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$/.test(character.name)) throw new Error("a character name is 1-64 letters, digits, spaces, '.', '_' or '-'");
      const all = storeGet();
      const full = Object.assign({ format: "facecraft-character/1", model: STATE.payload.stamp }, character);
      full.controls = Object.fromEntries(STATE.payload.controls.map((c, i) => [c.name, character.controls[i] || 0]));
      if (!full.person) { delete full.person; delete full.t; } else if (!STATE.payload.model.people.includes(full.person)) throw new Error(`no person ${full.person} in this model`);
      all[character.name] = full;
      storeSet(all);
      return full;
    },
    async mix(a, b, seed) {
      const names = STATE.payload.controls.map((c) => c.name);
      const ca = names.map((n) => (a.controls || {})[n] || 0), cb = names.map((n) => (b.controls || {})[n] || 0);
      const m = mixGenes(a.latent, b.latent, seed, ca, cb);
      return Object.assign(m, { parents: [a.name, b.name], seed });
    },
    async gallery() { return window.FACECRAFT_STATIC.gallery; },
    galleryUrl(rel) { return "gallery/" + rel.split("/").map(encodeURIComponent).join("/"); },
  };
  const backend = MODE === "static" ? staticBackend : servedBackend;

  // ---- state --------------------------------------------------------------------------------------
  const STATE = { payload: null, base: [], pcs: [], controls: [], person: null, t: 0, characters: [], walking: false, seq: 0, painted: 0, inFlight: false, pending: null };
  // the identity slider (identity-conditioned models): the owner morphed towards STATE.person by STATE.t
  const currentIdentity = () => ({ person: STATE.person, t: STATE.person === null ? 0 : STATE.t });

  function currentLatent() {
    const z = STATE.base.slice();
    STATE.payload.directions.forEach((d, k) => {
      const s = STATE.pcs[k];
      if (s) for (let i = 0; i < z.length; i++) z[i] += s * d.vector[i];
    });
    return z;
  }

  function showError(message) {
    const box = $("#error");
    if (message) { box.textContent = message; box.hidden = false; DIAG.errors++; } else { box.hidden = true; box.textContent = ""; }
  }

  const paintWaiters = [];
  function waitForPaint(afterSeq) {
    return new Promise((resolve) => paintWaiters.push({ afterSeq, resolve }));
  }
  function firePainted(seq, eventTime) {
    requestAnimationFrame(() => {
      const paintedAt = performance.now();
      STATE.painted = seq;
      DIAG.paints.push({ seq, eventTime, paintedAt });
      if (DIAG.paints.length > 1000) DIAG.paints.shift();
      for (let i = paintWaiters.length - 1; i >= 0; i--) {
        if (seq > paintWaiters[i].afterSeq) { paintWaiters[i].resolve({ seq, eventTime, paintedAt }); paintWaiters.splice(i, 1); }
      }
    });
  }

  // Latest wins: while one render is in flight, only the newest request waits behind it.
  function requestRender(eventTime) {
    const seq = ++STATE.seq;
    STATE.pending = { seq, eventTime: eventTime === undefined ? performance.now() : eventTime, latent: currentLatent(), controls: STATE.controls.slice(), identity: currentIdentity() };
    if (!STATE.inFlight) pump();
    return seq;
  }
  async function pump() {
    STATE.inFlight = true;
    while (STATE.pending) {
      const job = STATE.pending;
      STATE.pending = null;
      try {
        const image = await backend.render(job.latent, job.controls, STATE.payload.model.resolution, job.identity);
        $("#face").getContext("2d").putImageData(image, 0, 0);
        DIAG.renders++;
        if (STATE.renderFailed) { STATE.renderFailed = false; showError(null); }
      } catch (error) {
        STATE.renderFailed = true;
        showError("Could not draw the face: " + error.message);
      }
      firePainted(job.seq, job.eventTime);
    }
    STATE.inFlight = false;
  }

  // ---- UI building ----------------------------------------------------------------------------------
  function slider(container, label, min, max, step, value, onInput, title) {
    const row = document.createElement("div");
    row.className = "slider";
    const name = document.createElement("label");
    name.textContent = label;
    if (title) name.title = title;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min, max, step, value });
    input.setAttribute("aria-label", label);
    const shown = document.createElement("span");
    shown.textContent = Number(value).toFixed(2);
    input.addEventListener("input", (event) => {
      shown.textContent = Number(input.value).toFixed(2);
      onInput(Number(input.value), event.timeStamp);
    });
    row.append(name, input, shown);
    container.append(row);
    return input;
  }

  function buildSliders() {
    const p = STATE.payload;
    const controls = $("#controls"), directions = $("#directions");
    directions.textContent = "";
    $("#layer").textContent = p.layer;
    STATE.pcs = p.directions.map(() => 0);
    p.directions.forEach((d, k) => {
      const input = slider(directions, `${d.name} (${(100 * d.variance_ratio).toFixed(1)}%)`, -p.pc_range, p.pc_range, 0.05, 0,
        (v, t) => { STATE.pcs[k] = v; requestRender(t); }, "standard deviations along this principal component of the early layer");
      input.dataset.kind = "pc"; input.dataset.index = k; input.id = "pc-" + k;
    });
    if (p.controls.length) {
      controls.textContent = "";
      STATE.controls = p.controls.map(() => 0);
      p.controls.forEach((c, i) => {
        const input = slider(controls, c.name, c.min, c.max, 0.02, 0, (v, t) => { STATE.controls[i] = v; requestRender(t); });
        input.dataset.kind = "control"; input.dataset.index = i; input.id = "control-" + i;
      });
    } else {
      STATE.controls = [];
    }
    buildIdentity();
  }

  function buildIdentity() {
    const m = STATE.payload.model, people = m.identity_dim ? (m.people || []) : [];
    const box = $("#identity"), select = $("#person"), holder = $("#identity-slider");
    box.hidden = !m.identity_dim; // unconditioned models: no picker
    select.textContent = ""; holder.textContent = "";
    for (const name of people) select.append(new Option(name, name));
    STATE.person = people.length ? people[0] : null;
    STATE.t = 0;
    if (!m.identity_dim) return;
    select.disabled = !people.length;
    select.onchange = (event) => { STATE.person = select.value; requestRender(event.timeStamp); };
    const input = slider(holder, "owner → person", 0, 1, 0.01, 0, (v, t) => { STATE.t = v; requestRender(t); },
      "0: the owner as the model draws them for this latent; 1: the picked person's mean identity");
    input.id = "identity-t"; input.disabled = !people.length;
    if (!people.length) holder.append(Object.assign(document.createElement("p"), { className: "muted", textContent: "this model stores no people to morph into" }));
  }

  function syncSliders() {
    document.querySelectorAll("#directions input").forEach((input, k) => { input.value = STATE.pcs[k]; });
    document.querySelectorAll("#controls input").forEach((input, i) => { input.value = STATE.controls[i]; });
    if (STATE.person !== null) { $("#person").value = STATE.person; $("#identity-t").value = STATE.t; }
    document.querySelectorAll(".slider").forEach((row) => { const input = row.querySelector("input"); row.querySelector("span").textContent = Number(input.value).toFixed(2); });
  }

  function showInfo() {
    const m = STATE.payload.model, dl = $("#info");
    dl.textContent = "";
    const rows = [
      ["model", m.uri], ["version", m.model_name ? `${m.model_name} v${m.model_version}` + (m.model_aliases && m.model_aliases.length ? ` (${m.model_aliases.join(", ")})` : "") : "not registered"],
      ["MLflow run", m.mlflow_run_id], ["Dagster run", m.dagster_run_id], ["dataset version", m.dataset_version],
      ["resolution", `${m.resolution} px, latent ${m.latent_dim}`], ["checkpoint", (m.checkpoint_sha256 || "").slice(0, 16)],
    ];
    if (m.note) rows.push(["note", m.note]);
    for (const [key, value] of rows) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = key;
      if (key === "Dagster run" && value && MODE === "served") {
        const a = document.createElement("a");
        a.href = "http://127.0.0.1:3000/runs/" + value; a.textContent = value; a.target = "_blank";
        dd.append(a);
      } else dd.textContent = value || "-";
      dd.dataset.key = key;
      dl.append(dt, dd);
    }
    const canvas = $("#face");
    canvas.width = canvas.height = m.resolution;
    if (MODE === "served") $("#model-uri").value = m.uri;
  }

  async function refreshCharacters(select) {
    STATE.characters = await backend.characters();
    for (const id of ["#parent-a", "#parent-b"]) {
      const el = $(id), before = el.value;
      el.textContent = "";
      for (const c of STATE.characters) el.append(new Option(c.name, c.name));
      if (before) el.value = before;
    }
    if (select) { $("#parent-a").value = select[0] || $("#parent-a").value; if (select[1]) $("#parent-b").value = select[1]; }
  }
  const byName = (name) => STATE.characters.find((c) => c.name === name);

  function setIdentity(identity) {
    if (!identity || STATE.person === null) return;
    if (identity.person) {
      if (!STATE.payload.model.people.includes(identity.person)) throw new Error(`no person ${identity.person} in this model: choose one of ${STATE.payload.model.people.join(", ")}`);
      STATE.person = identity.person;
    }
    STATE.t = identity.person ? Math.max(0, Math.min(1, Number(identity.t) || 0)) : 0;
  }
  function setFace(latent, controls, identity) {
    if (!Array.isArray(latent) || latent.length !== STATE.payload.model.latent_dim) throw new Error(`this model takes a latent of ${STATE.payload.model.latent_dim} values`);
    setIdentity(identity);
    STATE.base = latent.map(Number);
    STATE.pcs = STATE.pcs.map(() => 0);
    STATE.controls = STATE.payload.controls.map((c, i) => Math.max(-1, Math.min(1, Number((controls || [])[i]) || 0)));
    syncSliders();
  }
  function characterControls(c) {
    return STATE.payload.controls.map((spec) => (c.controls || {})[spec.name] || 0);
  }
  // a character's person and t (none: the owner, t = 0); what a saved character keeps
  const characterIdentity = (c) => ({ person: c.person || null, t: c.person ? Number(c.t) || 0 : 0 });
  const savedIdentity = () => (STATE.person !== null && STATE.t > 0 ? { person: STATE.person, t: STATE.t } : {});
  function showCharacter(name) {
    const c = byName(name);
    if (!c) throw new Error("choose a saved character first");
    setFace(c.latent, characterControls(c), characterIdentity(c));
    return requestRender();
  }

  async function walk() {
    const a = byName($("#parent-a").value), b = byName($("#parent-b").value);
    if (!a || !b) throw new Error("choose two saved characters to walk between");
    const ca = characterControls(a), cb = characterControls(b), frames = 48;
    const ia = characterIdentity(a), ib = characterIdentity(b);
    const morph = STATE.person !== null && (ia.person === ib.person || !ia.person || !ib.person); // one person: walk t too
    if (morph) setIdentity({ person: ia.person || ib.person, t: 0 });
    STATE.walking = true;
    STATE.pcs = STATE.pcs.map(() => 0);
    syncSliders();
    for (let f = 0; f <= frames && STATE.walking; f++) {
      const t = 0.5 - 0.5 * Math.cos(Math.PI * f / frames); // ease in and out
      STATE.base = a.latent.map((v, i) => v + t * (b.latent[i] - v));
      STATE.controls = ca.map((v, i) => v + t * (cb[i] - v));
      if (morph) { STATE.t = ia.t + t * (ib.t - ia.t); syncSliders(); }
      const seq = requestRender();
      await waitForPaint(seq - 1);
      await new Promise((r) => setTimeout(r, 30));
    }
    STATE.walking = false;
  }

  function guard(fn) {
    return async (...args) => { try { showError(null); await fn(...args); } catch (error) { showError(error.message); } };
  }

  function download(name, blob) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = name; a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  function wire() {
    $("#randomize").addEventListener("click", (e) => { STATE.base = gaussian(STATE.payload.model.latent_dim); STATE.pcs = STATE.pcs.map(() => 0); syncSliders(); requestRender(e.timeStamp); });
    $("#reset").addEventListener("click", () => { STATE.pcs = STATE.pcs.map(() => 0); STATE.controls = STATE.controls.map(() => 0); STATE.t = 0; syncSliders(); requestRender(); });
    $("#save").addEventListener("click", guard(async () => {
      const name = $("#char-name").value.trim();
      if (!name) throw new Error("give the character a name");
      await backend.save(Object.assign({ name, latent: currentLatent(), controls: STATE.controls.slice(), parents: STATE.parents || [], seed: STATE.mixSeed === undefined ? null : STATE.mixSeed }, savedIdentity()));
      const a = $("#parent-a").value;
      await refreshCharacters(a && a !== name ? [a, name] : [name]);
      $("#status").textContent = `saved ${name}`;
    }));
    $("#show-a").addEventListener("click", guard(() => showCharacter($("#parent-a").value)));
    $("#show-b").addEventListener("click", guard(() => showCharacter($("#parent-b").value)));
    $("#mix").addEventListener("click", guard(async () => {
      const a = byName($("#parent-a").value), b = byName($("#parent-b").value), seed = Number($("#mix-seed").value);
      if (!a || !b) throw new Error("choose two saved characters to mix");
      if (!Number.isInteger(seed) || seed < 0) throw new Error("the mixing seed must be a whole number >= 0");
      const child = await backend.mix(a, b, seed);
      setFace(child.latent, child.controls);
      STATE.parents = [a.name, b.name]; STATE.mixSeed = seed;
      const fromB = child.latent_from.reduce((s, v) => s + v, 0);
      $("#mix-info").textContent = `child of ${a.name} × ${b.name}, seed ${seed}: ${child.latent.length - fromB} genes from A, ${fromB} from B`;
      $("#char-name").value = `${a.name}x${b.name}-${seed}`.slice(0, 64);
      await waitForPaint(requestRender() - 1);
    }));
    $("#walk").addEventListener("click", guard(walk));
    $("#stop-walk").addEventListener("click", () => { STATE.walking = false; });
    $("#download-png").addEventListener("click", () => $("#face").toBlob((blob) => download("face.png", blob)));
    $("#download-json").addEventListener("click", guard(() => {
      const name = $("#char-name").value.trim() || "character";
      const character = Object.assign({ format: "facecraft-character/1", name, latent: currentLatent(), controls: Object.fromEntries(STATE.payload.controls.map((c, i) => [c.name, STATE.controls[i]])), model: STATE.payload.stamp }, savedIdentity());
      download(name + ".json", new Blob([JSON.stringify(character, null, 1)], { type: "application/json" }));
    }));
    $("#import-json").addEventListener("change", guard(async (event) => {
      const file = event.target.files[0];
      if (!file) return;
      let data;
      try { data = JSON.parse(await file.text()); } catch (e) { throw new Error(`${file.name} is not JSON`); }
      if (!data || data.format !== "facecraft-character/1" || !Array.isArray(data.latent)) throw new Error(`${file.name} is not a FaceCraft character`);
      if (data.latent.length !== STATE.payload.model.latent_dim) throw new Error(`${data.name} was made with a latent of ${data.latent.length} values; this model takes ${STATE.payload.model.latent_dim}`);
      const identity = characterIdentity(data);
      await backend.save(Object.assign({ name: String(data.name || file.name.replace(/\.json$/, "")), latent: data.latent, controls: characterControls(data), parents: data.parents || [], seed: data.seed },
        identity.person ? identity : {}));
      await refreshCharacters([data.name]);
      setFace(data.latent, characterControls(data), identity);
      requestRender();
    }));
    $("#load-model").addEventListener("click", guard(async () => {
      $("#status").textContent = "loading model…";
      try { STATE.payload = await backend.load($("#model-uri").value); } finally { $("#status").textContent = ""; }
      await start(false);
    }));
    document.querySelectorAll("nav .tab").forEach((tab) => tab.addEventListener("click", () => {
      document.querySelectorAll("nav .tab").forEach((t) => t.classList.toggle("active", t === tab));
      document.querySelectorAll(".tab-page").forEach((p) => { p.hidden = p.id !== "tab-" + tab.dataset.tab; });
      if (tab.dataset.tab === "gallery") guard(showGallery)();
    }));
  }

  let slides = [], slideAt = 0, slideTimer = null;
  async function showGallery() {
    const g = await backend.gallery();
    $("#gallery-warnings").textContent = (g.warnings || []).join("; ");
    $("#champion").textContent = g.folder ? `champion: ${g.champion || "none"}${g.reason ? " (" + g.reason + ")" : ""}` : "";
    const table = $("#scores");
    table.textContent = "";
    const keys = [...new Set((g.models || []).flatMap((m) => Object.keys(m)))];
    if (keys.length) {
      const head = table.insertRow();
      for (const k of keys) { const th = document.createElement("th"); th.textContent = k; head.append(th); }
      for (const m of g.models) {
        const row = table.insertRow();
        for (const k of keys) { const v = m[k]; row.insertCell().textContent = typeof v === "number" ? (Number.isInteger(v) ? v : v.toFixed(3)) : (v === null || v === undefined ? "-" : String(v)); }
      }
    }
    const images = $("#gallery-images");
    images.textContent = "";
    for (const rel of (g.grids || (g.images || []).filter((r) => !r.includes("/")))) {
      const img = document.createElement("img"); img.src = backend.galleryUrl(rel); img.alt = img.title = rel; images.append(img);
    }
    $("#gallery-md").textContent = g.markdown || "";
    slides = (g.lora && g.lora.images) || [];
    const prompt = (g.lora && g.lora.prompt) || "", captions = (g.lora && g.lora.captions) || [];
    const showSlide = () => {
      if (!slides.length) { $("#slide").hidden = true; $("#slide-caption").textContent = "no LoRA samples"; return; }
      slideAt = (slideAt + slides.length) % slides.length;
      $("#slide").hidden = false;
      $("#slide").src = backend.galleryUrl(slides[slideAt]);
      $("#slide-caption").textContent = `${slideAt + 1}/${slides.length}  prompt: “${captions[slideAt] || prompt || "?"}”  (${slides[slideAt]})`;
    };
    $("#slide-prev").onclick = () => { slideAt--; showSlide(); };
    $("#slide-next").onclick = () => { slideAt++; showSlide(); };
    clearInterval(slideTimer);
    slideTimer = setInterval(() => { if (!$("#tab-gallery").hidden) { slideAt++; showSlide(); } }, 2500);
    showSlide();
  }

  async function start(first) {
    buildSliders();
    showInfo();
    STATE.base = gaussian(STATE.payload.model.latent_dim);
    if (first) wire();
    await refreshCharacters();
    $("#status").textContent = MODE === "static" ? "static site: rendering in this browser (onnxruntime-web, wasm)" : "served by facecraft explore";
    await waitForPaint(requestRender() - 1);
  }

  let resolveReady, rejectReady;
  const ready = new Promise((res, rej) => { resolveReady = res; rejectReady = rej; });
  ready.catch(() => {});
  window.explorer = {
    mode: MODE, ready, diag: DIAG, mulberry32, mixGenes,
    state: () => ({ latent: currentLatent(), base: STATE.base.slice(), pcs: STATE.pcs.slice(), controls: STATE.controls.slice(), ...currentIdentity(), seq: STATE.seq, painted: STATE.painted, walking: STATE.walking }),
    setFace(latent, controls, identity) { setFace(latent, controls, identity); return waitForPaint(requestRender() - 1); },
    waitForPaint,
    pixels() { const c = $("#face"); return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data); },
  };

  (async () => {
    if (MODE === "static") document.body.classList.add("static");
    try {
      STATE.payload = await backend.init();
      const wanted = new URLSearchParams(location.search).get("model");
      if (MODE === "served" && wanted && wanted !== STATE.payload.model.uri) {
        try { STATE.payload = await backend.load(wanted); } catch (error) { await start(true); showError(`could not load ${wanted}: ${error.message}`); resolveReady(); return; }
      }
      await start(true);
      resolveReady();
    } catch (error) {
      $("#status").textContent = "";
      showError("The explorer could not start: " + error.message);
      rejectReady(error);
    }
  })();
})();
