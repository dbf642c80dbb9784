// duplexsynth viewer: draws one dialogue page from its inline JSON (no network, no library).
// Geometry: x = PAD + seconds * px/s; one lane per speaker, then the assistant's label track.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("page-data").textContent);
  var STATES = { L: "LISTEN", S: "SPEAK", B: "BACKCHANNEL", I: "IGNORE" };
  var PAD = 8, AXIS_H = 22, LANE_H = 40, OVER_H = 0, STATE_H = 18, EVENT_H = 14, AXIS_ROW_H = 17;
  var NAMES_W = 150;
  var pxs = Number(data.px_per_s) || 80;
  var audios = Array.prototype.slice.call(document.querySelectorAll("audio.track"));
  var active = audios[0] || null;
  var svg = document.getElementById("lanes");
  var names = document.getElementById("lane-names");
  var scroller = document.getElementById("scroller");
  var clock = document.getElementById("clock");
  var playhead = null;
  var nameOf = {};
  data.speakers.forEach(function (spk) { nameOf[spk.id] = spk.name; });

  function el(name, attrs, parent, text) {
    var node = document.createElementNS(NS, name);
    for (var key in attrs) { if (attrs[key] !== undefined) node.setAttribute(key, attrs[key]); }
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function x(t) { return PAD + t * pxs; }
  function fit(text, width) {  // ~5.6 px per character at 10 px
    var room = Math.floor((width - 4) / 5.6);
    if (room < 1) return "";
    return text.length <= room ? text : (room > 1 ? text.slice(0, room - 1) + "\u2026" : "");
  }
  function fmt(t) { return t.toFixed(2) + " s"; }

  function layout() {
    var rows = { lanes: AXIS_H };
    rows.labels = rows.lanes + data.lanes.length * LANE_H + 6;
    rows.events = rows.labels + STATE_H;
    rows.windows = rows.events + EVENT_H + 4;
    var axisRows = data.labels ? data.labels.axis_rows : 0;
    rows.bottom = data.labels ? rows.windows + axisRows * AXIS_ROW_H + 6 : rows.labels;
    return rows;
  }

  function drawNames(rows) {
    names.innerHTML = "";
    names.setAttribute("width", NAMES_W);
    names.setAttribute("height", rows.bottom);
    data.speakers.forEach(function (spk, i) {
      var y = rows.lanes + i * LANE_H;
      el("rect", { x: 0, y: y, width: NAMES_W, height: LANE_H, "class": "lane-bg lane-" + (i % 2) }, names);
      el("text", { x: 6, y: y + 17, "class": "lane-name spk-" + i }, names, spk.name + (spk.assistant ? " \u2605" : ""));
      el("text", { x: 6, y: y + 31, "class": "lane-role" }, names, fit(spk.role || spk.id, NAMES_W - 8));
    });
    if (!data.labels) return;
    el("text", { x: 6, y: rows.labels + 13, "class": "row-name" }, names, "duplex state");
    el("text", { x: 6, y: rows.events + 11, "class": "row-name" }, names, "events");
    el("text", { x: 6, y: rows.windows + 12, "class": "row-name" }, names, "axis windows");
  }

  function drawAxis(width, rows) {
    var step = pxs >= 80 ? 1 : pxs >= 40 ? 2 : 5, labelEvery = pxs >= 160 ? 1 : pxs >= 40 ? 5 : 10;
    var g = el("g", { "class": "axis" }, svg);
    for (var t = 0; t <= data.duration_s + 1e-9; t += step) {
      var major = Math.abs(t / labelEvery - Math.round(t / labelEvery)) < 1e-9;
      el("line", { x1: x(t), x2: x(t), y1: major ? 6 : 14, y2: rows.bottom, "class": major ? "grid major" : "grid" }, g);
      if (major) el("text", { x: x(t) + 2, y: 12 }, g, t + " s");
    }
  }

  function drawLanes(rows) {
    data.lanes.forEach(function (lane, i) {
      var y = rows.lanes + i * LANE_H;
      el("rect", { x: 0, y: y, width: x(data.duration_s) + PAD, height: LANE_H, "class": "lane-bg lane-" + (i % 2) }, svg);
      var g = el("g", { "class": "lane spk-" + i, "data-speaker": lane.speaker }, svg);
      lane.segments.forEach(function (seg) {
        var cls = "seg kind-" + seg.kind + (seg.side_talk ? " side-talk" : "") + (seg.cut_at_s !== null ? " was-cut" : "");
        var s = el("rect", { x: x(seg.start_s), y: y + 3, width: Math.max(1, (seg.end_s - seg.start_s) * pxs), height: LANE_H - 6, rx: 3, "class": cls, "data-turn": seg.turn }, g);
        var tip = "turn " + seg.turn + " \u00b7 " + seg.kind + " \u00b7 " + fmt(seg.start_s) + "\u2013" + fmt(seg.end_s);
        if (seg.addressee !== "all") tip += " \u00b7 to " + (nameOf[seg.addressee] || seg.addressee) + (seg.side_talk ? " (side talk)" : "");
        if (seg.interrupts) tip += " \u00b7 barges in";
        if (seg.overlap) tip += " \u00b7 overlapped transfer";
        el("title", {}, s, tip);
        var tag = seg.kind === "backchannel" ? "BC" : seg.side_talk ? "\u2192 " + (nameOf[seg.addressee] || seg.addressee) : "";
        if (seg.interrupts) tag = "\u26a1 barges in " + tag;
        if (tag) el("text", { x: x(seg.start_s) + 2, y: y + 11, "class": "seg-tag" }, g, tag);
        seg.pauses.forEach(function (p) {
          var r = el("rect", { x: x(p[0]), y: y + 3, width: Math.max(1, (p[1] - p[0]) * pxs), height: LANE_H - 6, "class": "pause" }, g);
          el("title", {}, r, "mid-turn pause " + fmt(p[0]) + "\u2013" + fmt(p[1]));
        });
        seg.words.forEach(function (w) {
          var wx = x(w[1]), ww = Math.max(2, (w[2] - w[1]) * pxs);
          var box = el("g", { "class": "word", "data-start": w[1], "data-end": w[2] }, g);
          el("rect", { x: wx, y: y + 14, width: ww, height: LANE_H - 19, rx: 2 }, box);
          var label = fit(w[0], ww);
          if (label) el("text", { x: wx + 2, y: y + 29 }, box, label);
          el("title", {}, box, w[0] + "  " + fmt(w[1]) + "\u2013" + fmt(w[2]));
        });
        if (seg.cut_at_s !== null) {
          var cx = x(seg.cut_at_s);
          el("line", { x1: cx, x2: cx, y1: y + 1, y2: y + LANE_H - 1, "class": "cut" }, g);
          var mark = el("text", { x: cx + 2, y: y + 11, "class": "cut-mark" }, g, "\u2702 cut");
          el("title", {}, mark, "cut at " + fmt(seg.cut_at_s));
          if (seg.unsaid.length) {
            var ghost = el("text", { x: cx + 4, y: y + 29, "class": "unsaid" }, g, fit(seg.unsaid.join(" "), 40 * 5.6));
            el("title", {}, ghost, "never said (cut): " + seg.unsaid.join(" "));
          }
        }
      });
    });
    var laneBottom = rows.lanes + data.lanes.length * LANE_H;
    data.overlaps.forEach(function (o) {
      var r = el("rect", { x: x(o[0]), y: rows.lanes, width: Math.max(1, (o[1] - o[0]) * pxs), height: laneBottom - rows.lanes, "class": "overlap" }, svg);
      el("title", {}, r, "overlapped speech " + fmt(o[0]) + "\u2013" + fmt(o[1]));
    });
  }

  function drawLabels(rows) {
    var labels = data.labels;
    if (!labels) return;
    var fw = labels.frame_s * pxs;
    var cells = el("g", { "class": "states" }, svg);
    for (var f = 0; f < labels.frames; f++) {
      var code = labels.state.charAt(f);
      el("rect", { x: x(f * labels.frame_s), y: rows.labels, width: fw, height: STATE_H - 2, "class": "cell s-" + code, "data-frame": f }, cells);
    }
    var ticks = el("g", { "class": "events" }, svg);
    labels.events.forEach(function (ev) {
      var tx = x(ev[0] * labels.frame_s);
      var line = el("line", { x1: tx, x2: tx, y1: rows.labels - 2, y2: rows.events + EVENT_H, "class": "tick ev " + ev[1], "data-frame": ev[0] }, ticks);
      el("title", {}, line, ev[1] + " at frame " + ev[0] + " (" + fmt(ev[0] * labels.frame_s) + ")");
      el("text", { x: tx + 2, y: rows.events + 11, "class": "tick-label ev " + ev[1] }, ticks, { TURN_START: "START", TURN_END: "END", YIELD: "YIELD", BC_START: "BC" }[ev[1]] || ev[1]);
    });
    var wins = el("g", { "class": "windows" }, svg);
    labels.axis_events.forEach(function (w) {
      var wy = rows.windows + w.row * AXIS_ROW_H, wx = x(w.start_s), width = Math.max(2, (w.end_s - w.start_s) * pxs);
      var g = el("g", { "class": "window axis-" + w.axis }, wins);
      el("rect", { x: wx, y: wy, width: width, height: AXIS_ROW_H - 3, rx: 3 }, g);
      el("text", { x: wx + 3, y: wy + 11 }, g, fit(w.axis.replace("_", " ") + " \u2192 " + w.expected, width));
      var tip = w.axis + ": expected " + w.expected + " " + fmt(w.start_s) + "\u2013" + fmt(w.end_s);
      if (w.speaker) tip += " \u00b7 by " + w.speaker;
      if (w.response_s !== null && w.response_s !== undefined) {
        tip += " \u00b7 reference response at " + fmt(w.response_s);
        el("line", { x1: x(w.response_s), x2: x(w.response_s), y1: wy, y2: wy + AXIS_ROW_H - 3, "class": "response" }, g);
      }
      el("title", {}, g, tip);
    });
  }

  function render() {
    var rows = layout();
    var width = x(data.duration_s) + PAD;
    svg.innerHTML = "";
    var defs = el("defs", {}, svg);
    var hatch = el("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
    el("rect", { width: 6, height: 6, "class": "hatch-bg" }, hatch);
    el("line", { x1: 0, y1: 0, x2: 0, y2: 6, "class": "hatch-line" }, hatch);
    svg.setAttribute("width", width);
    svg.setAttribute("height", rows.bottom);
    drawNames(rows);
    drawAxis(width, rows);
    drawLanes(rows);
    drawLabels(rows);
    playhead = el("line", { id: "playhead", x1: 0, x2: 0, y1: 0, y2: rows.bottom }, svg);
    movePlayhead(active ? active.currentTime : 0);
  }

  function movePlayhead(t) {
    if (!playhead) return;
    playhead.setAttribute("x1", x(t));
    playhead.setAttribute("x2", x(t));
    clock.textContent = fmt(t);
  }

  var lastSeek = 0;  // every player (re)loading picks this up, so they stay in step
  function seek(t) {
    lastSeek = t = Math.max(0, Math.min(t, data.duration_s));
    audios.forEach(function (a) { if (a.readyState >= 1) a.currentTime = t; });
    movePlayhead(t);
  }

  function follow() {
    if (active && !active.paused) {
      var px = x(active.currentTime);
      movePlayhead(active.currentTime);
      if (px < scroller.scrollLeft + 40 || px > scroller.scrollLeft + scroller.clientWidth - 40) {
        scroller.scrollLeft = Math.max(0, px - 80);
      }
    }
    window.requestAnimationFrame(follow);
  }

  // Chromium cannot seek media from a server that ignores byte ranges (python -m http.server):
  // over http(s) the page loads each file whole into a blob: URL, which seeks. From disk
  // (file://, where fetch is blocked) the files are read directly and seek as they are.
  if (window.location.protocol !== "file:" && window.fetch && window.URL) {
    audios.forEach(function (a) {
      fetch(a.currentSrc || a.src).then(function (r) { return r.ok ? r.blob() : null; })
        .then(function (blob) { if (blob && a.paused) a.src = URL.createObjectURL(blob); })
        .catch(function () {});
    });
  }
  audios.forEach(function (a) {
    a.addEventListener("loadedmetadata", function () {
      if (Math.abs(a.currentTime - lastSeek) > 1e-3) a.currentTime = lastSeek;
    });
    a.addEventListener("play", function () {
      audios.forEach(function (other) { if (other !== a) other.pause(); });
      active = a;
    });
    a.addEventListener("seeked", function () { if (a === active) movePlayhead(a.currentTime); });
  });

  svg.addEventListener("click", function (event) {
    var word = event.target.closest ? event.target.closest(".word") : null;
    if (word) { seek(Number(word.getAttribute("data-start"))); return; }
    var box = svg.getBoundingClientRect();
    seek((event.clientX - box.left - PAD) / pxs);
  });
  document.querySelectorAll("#script li.line").forEach(function (line) {
    line.addEventListener("click", function () { seek(Number(line.getAttribute("data-start"))); });
  });
  document.getElementById("zoom").addEventListener("change", function (event) {
    var t = active ? active.currentTime : 0;
    pxs = Number(event.target.value);
    render();
    scroller.scrollLeft = Math.max(0, x(t) - 80);
  });

  function fromHash() {  // dialogue.html#t=12.5 opens the page at 12.5 s
    var match = /t=([0-9.]+)/.exec(window.location.hash);
    if (!match) return;
    var t = Number(match[1]);
    seek(t);
    scroller.scrollLeft = Math.max(0, x(t) - scroller.clientWidth / 3);
  }
  window.addEventListener("hashchange", fromHash);

  render();
  fromHash();
  window.requestAnimationFrame(follow);
  window.duplexViewer = { data: data, seek: seek, render: render };
})();
