// The console's only script: live incident list, waiting for an investigation, and the chat stream.
// Everything it loads comes from this server; text from the server is inserted as text, never HTML.
"use strict";

function csrf() { return document.body.dataset.csrf || ""; }

// Incidents list: re-read the rows every 5 s (the server renders them; no client templating).
function liveIncidents() {
  const live = document.getElementById("live");
  const body = document.getElementById("incident-rows");
  if (!live || !body) return;
  const refresh = async () => {
    try {
      const res = await fetch(live.dataset.src, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (res.ok) {
        body.innerHTML = await res.text();
        live.textContent = "live: updated " + new Date().toLocaleTimeString();
        const total = res.headers.get("X-Total-Count");
        const note = document.getElementById("total");
        if (total !== null && note) note.textContent = total + " incident(s)";
      } else if (res.status === 401) {
        live.textContent = "live: signed out";
        return;
      }
    } catch (e) {
      live.textContent = "live: server unreachable, retrying";
    }
    setTimeout(refresh, 5000);
  };
  setTimeout(refresh, 5000);
}

// Incident page: while an investigation is queued or running, reload once it is done.
function waitForInvestigation() {
  const pending = document.getElementById("pending");
  if (!pending) return;
  const url = location.pathname + "/state";
  const poll = async () => {
    try {
      const res = await fetch(url, { credentials: "same-origin" });
      if (res.ok && (await res.json()).pending === null) { location.reload(); return; }
    } catch (e) { /* keep waiting */ }
    setTimeout(poll, 1500);
  };
  setTimeout(poll, 1500);
}

function addMessage(log, role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  log.appendChild(div);
  return div;
}

// Chat: POST the question, read the Server-Sent Events as they arrive, append text deltas.
function chat() {
  const form = document.getElementById("chat-form");
  const log = document.getElementById("chat-log");
  if (!form || !log) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const box = form.elements["message"];
    const message = box.value.trim();
    if (!message) return;
    const button = form.querySelector("button");
    button.disabled = true;
    addMessage(log, "user", message);
    box.value = "";
    const answer = addMessage(log, "assistant", "");
    answer.classList.add("streaming");
    try {
      const res = await fetch(form.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(), "Accept": "text/event-stream" },
        body: JSON.stringify({ message: message, conversation_id: form.dataset.conversation || null }),
      });
      if (!res.ok || !res.body) {
        answer.classList.add("error");
        answer.textContent = "refused: HTTP " + res.status + " " + (await res.text());
        return;
      }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
          let event = "message";
          const data = [];
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).trim());
          }
          if (!data.length) continue;
          const payload = JSON.parse(data.join("\n"));
          if (event === "text") answer.textContent += payload.delta || "";
          else if (event === "error") addMessage(log, "error", payload.message || "error");
          else if (event === "done" && payload.conversation_id) form.dataset.conversation = payload.conversation_id;
        }
      }
    } catch (e) {
      addMessage(log, "error", "the answer was cut off: " + e);
    } finally {
      answer.classList.remove("streaming");
      answer.dataset.done = "1";
      button.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => { liveIncidents(); waitForInvestigation(); chat(); });
