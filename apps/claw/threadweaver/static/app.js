// ThreadWeaver's page: login, threads, one branch of a thread at a time, streamed replies, tool approvals,
// spend and the appliance panel. Plain ES modules, no build step; all text goes in as text, never as markup.

import { ApiError, api, stream, whenUnauthenticated } from "./api.js";
import { $, fill, h, usd } from "./dom.js";
import { refreshStatus } from "./status.js";
import { branch, index, notesOf, siblings } from "./tree.js";

const state = {
  providers: [], // [{name, kind, models}]
  threads: [],
  spend: null,
  thread: null, // the open thread
  tree: null, // index() of its messages
  tip: null, // the message id whose branch is shown
  highlight: null, // a search hit to mark once rendered
  approval: null, // {message_id, calls} waiting for the user's decisions
  busy: false, // a reply is streaming: one turn at a time
};

// -- login ----------------------------------------------------------------------------------------------

function showLogin() {
  $("#app").hidden = true;
  $("#login").hidden = false;
  $("#password").focus();
}

async function login(event) {
  event.preventDefault();
  const error = $("#login-error");
  error.textContent = "";
  try {
    await api("POST", "/login", { password: $("#password").value });
  } catch (err) {
    error.textContent = err.status === 401 ? "Wrong password." : err.message;
    return;
  }
  $("#password").value = "";
  await start();
}

async function logout() {
  await api("POST", "/logout").catch(() => {});
  showLogin();
}

// -- the lists: providers, threads, spend ---------------------------------------------------------------

async function start() {
  const [providers, threads] = await Promise.all([api("GET", "/providers"), api("GET", "/threads")]);
  Object.assign(state, { providers, threads });
  $("#login").hidden = true;
  $("#app").hidden = false;
  providerOptions($("#new-provider"), providers[0]?.name);
  modelOptions($("#new-models"), $("#new-provider").value);
  $("#new-model").value = modelsOf($("#new-provider").value)[0] || "";
  renderThreads();
  await refreshSpend();
  refreshStatus($("#status-body"));
}

function modelsOf(provider) {
  return state.providers.find((p) => p.name === provider)?.models || [];
}

function providerOptions(select, selected) {
  const names = state.providers.map((p) => p.name);
  // A thread may name a provider no longer configured: keep it visible rather than silently show another.
  if (selected && !names.includes(selected)) names.push(selected);
  fill(select, names.map((name) => h("option", { value: name, selected: name === selected }, name)));
}

function modelOptions(datalist, provider) {
  fill(datalist, modelsOf(provider).map((model) => h("option", { value: model })));
}

function threadLabel(thread) {
  return thread.title || `Thread of ${new Date(thread.created_at * 1000).toLocaleString()}`;
}

function renderThreads() {
  const items = [...state.threads].reverse().map((t) =>
    h(
      "li",
      { class: t.id === state.thread?.id ? "active" : "", dataset: { id: t.id } },
      h("button", { type: "button", class: "link", on: { click: () => openThread(t.id) } }, threadLabel(t)),
      h("span", { class: "muted" }, ` ${t.provider} · ${t.model}`),
    ),
  );
  fill($("#threads"), items.length ? items : h("li", { class: "muted" }, "none yet"));
}

async function refreshSpend() {
  state.spend = await api("GET", "/spend");
  const { total_usd: total, providers, caps } = state.spend;
  const rows = Object.entries(providers).map(([name, p]) => {
    const cap = caps?.[name];
    return h(
      "li",
      { dataset: { provider: name } },
      h("span", {}, name),
      h("span", { class: "value" }, cap ? `${usd(p.cost_usd)} of ${usd(cap.cap_usd)}` : usd(p.cost_usd)),
      h("span", { class: "muted" }, `${p.tokens_in + p.tokens_out} tokens`),
    );
  });
  fill($("#spend"), h("p", { id: "spend-total" }, `Total ${usd(total)}`), h("ul", { class: "list compact" }, rows));
  renderThreadSpend();
}

function renderThreadSpend() {
  if (!state.thread) return;
  const spent = state.spend?.threads?.[state.thread.id];
  const cap = state.thread.cap_usd != null ? ` of ${usd(state.thread.cap_usd)}` : "";
  $("#thread-spend").textContent = spent
    ? `${usd(spent.cost_usd)}${cap} · ${spent.tokens_in + spent.tokens_out} tokens`
    : `${usd(0)}${cap}`;
}

async function createThread(event) {
  event.preventDefault();
  const error = $("#new-thread-error");
  error.textContent = "";
  try {
    const thread = await api("POST", "/threads", {
      provider: $("#new-provider").value,
      model: $("#new-model").value.trim(),
      title: $("#new-title").value.trim(),
      system_prompt: $("#new-system").value,
    });
    state.threads.push(thread);
    $("#new-title").value = "";
    $("#new-system").value = "";
    $("#new-thread").open = false;
    await openThread(thread.id);
  } catch (err) {
    error.textContent = err.message;
  }
}

// -- search ---------------------------------------------------------------------------------------------

let searchTimer = null;

function searchSoon() {
  clearTimeout(searchTimer); // wait for a pause in typing: one query, not one per key
  searchTimer = setTimeout(search, 250);
}

async function search() {
  const q = $("#search").value.trim();
  if (!q) return fill($("#hits"));
  const hits = await api("GET", `/search?${new URLSearchParams({ q })}`);
  const titles = new Map(state.threads.map((t) => [t.id, threadLabel(t)]));
  const items = hits.map((hit) =>
    h(
      "li",
      { class: "hit", dataset: { message: hit.message_id } },
      h(
        "button",
        { type: "button", class: "link", on: { click: () => openThread(hit.thread_id, hit.message_id, true) } },
        hit.snippet,
      ),
      h("span", { class: "muted" }, ` ${titles.get(hit.thread_id) || ""}`),
    ),
  );
  fill($("#hits"), items.length ? items : h("li", { class: "muted" }, "no match"));
}

// -- a thread -------------------------------------------------------------------------------------------

/** Open a thread on the branch through `tip` (default: the newest message); `mark` outlines it (a search hit). */
async function openThread(id, tip = null, mark = false) {
  const data = await api("GET", `/threads/${id}`);
  if (state.thread?.id !== id) state.approval = null;
  state.thread = data.thread;
  state.tree = index(data.messages);
  state.tip = tip;
  state.highlight = mark ? tip : null;
  const known = state.threads.findIndex((t) => t.id === id);
  if (known >= 0) state.threads[known] = data.thread;
  renderThreads();
  renderHeader();
  renderMessages(branch(state.tree, state.tip));
  $("#composer").hidden = false;
  $("#empty").hidden = true;
}

function renderHeader() {
  const t = state.thread;
  $("#thread-header").hidden = false;
  $("#thread-title").textContent = threadLabel(t);
  providerOptions($("#thread-provider"), t.provider);
  modelOptions($("#thread-models"), t.provider);
  $("#thread-model").value = t.model;
  $("#thread-cap").value = t.cap_usd ?? "";
  const exported = (format) => `/threads/${encodeURIComponent(t.id)}/export?${new URLSearchParams({ format })}`;
  $("#thread-export-md").href = exported("markdown");
  $("#thread-export-json").href = exported("json");
  renderThreadSpend();
}

async function switchRoute(change) {
  try {
    state.thread = await api("PATCH", `/threads/${state.thread.id}`, change);
    state.threads = state.threads.map((t) => (t.id === state.thread.id ? state.thread : t));
    renderThreads();
  } catch (err) {
    note(`${err.code}: ${err.message}`);
  }
  renderHeader();
}

function onProviderPicked() {
  const provider = $("#thread-provider").value;
  // Another provider rarely serves the same model name: offer its first model, keep the typed one otherwise.
  const model = modelsOf(provider)[0] || $("#thread-model").value.trim();
  switchRoute({ provider, model });
}

function onModelTyped() {
  const model = $("#thread-model").value.trim();
  if (model && model !== state.thread.model) switchRoute({ model });
}

function onCapTyped() {
  const typed = $("#thread-cap").value.trim();
  const cap = typed === "" ? null : Number(typed);
  if (cap !== state.thread.cap_usd) switchRoute({ cap_usd: cap }); // empty: no cap; a bad one is refused (422)
}

/** The title becomes an input: Enter (or leaving it) saves, Escape cancels. */
function startRename() {
  const title = $("#thread-title");
  const input = h("input", { id: "thread-title-input", value: state.thread.title, maxlength: 200, "aria-label": "Title" });
  let done = false;
  const finish = (save) => {
    if (done) return;
    done = true;
    const text = input.value.trim();
    input.replaceWith(title);
    if (save && text && text !== state.thread.title) switchRoute({ title: text });
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") finish(true);
    else if (event.key === "Escape") finish(false);
  });
  input.addEventListener("blur", () => finish(true));
  title.replaceWith(input);
  input.focus();
  input.select();
}

async function deleteThread() {
  const t = state.thread;
  if (!t || state.busy || !confirm(`Delete "${threadLabel(t)}" and all its messages? This cannot be undone.`)) return;
  try {
    await api("DELETE", `/threads/${t.id}`);
  } catch (err) {
    note(`${err.code}: ${err.message}`);
    return;
  }
  Object.assign(state, { thread: null, tree: null, tip: null, approval: null });
  state.threads = state.threads.filter((other) => other.id !== t.id);
  $("#thread-header").hidden = true;
  $("#composer").hidden = true;
  $("#empty").hidden = false;
  fill($("#messages"));
  fill($("#hits"));
  renderThreads();
  await refreshSpend();
}

function renderMessages(path) {
  const box = $("#messages");
  fill(box, path.map((m, i) => [messageView(m, i === path.length - 1), notesOf(state.tree, m).map(noteView)]));
  const hit = state.highlight && box.querySelector(`[data-id="${CSS.escape(state.highlight)}"]`);
  if (hit) {
    hit.classList.add("highlight");
    hit.scrollIntoView({ block: "center" });
    state.highlight = null;
  } else {
    box.scrollTop = box.scrollHeight;
  }
}

function messageView(m, last) {
  return h(
    "article",
    { class: `msg ${m.role} ${m.status}`, dataset: { id: m.id } },
    messageHead(m, last),
    h("div", { class: "text" }, m.content),
    toolCallsView(m, last),
  );
}

function messageHead(m, last) {
  const head = h("header", { class: "head" }, h("span", { class: "role" }, roleLabel(m)));
  if (m.role === "assistant" && m.provider) {
    const cost = m.cost_usd ? ` · ${usd(m.cost_usd)}` : "";
    head.append(h("span", { class: "muted" }, `${m.provider} · ${m.model}${cost}`));
  }
  if (m.status !== "complete") head.append(h("span", { class: `badge ${m.status}` }, m.status));
  head.append(branchNav(m));
  if (m.role === "user") {
    head.append(h("button", { type: "button", class: "link edit", on: { click: () => editAndBranch(m) } }, "edit & branch"));
  }
  if (m.role === "assistant" && m.parent_id) {
    head.append(h("button", { type: "button", class: "link regen", on: { click: () => regenerate(m) } }, "regenerate"));
  }
  // The newest reply of the branch, with text and no tool calls: its rest can be asked for (cut by the output
  // limit, an abort or a crash).
  if (m.role === "assistant" && last && m.content && !(m.tool_calls || []).length && m.status !== "blocked") {
    head.append(h("button", { type: "button", class: "link cont", on: { click: () => continueReply(m) } }, "continue"));
  }
  return head;
}

function roleLabel(m) {
  if (m.role === "tool") return `tool result · ${m.tool_name || ""}`;
  return { user: "you", assistant: "assistant", system: "system" }[m.role] || m.role;
}

/** "‹ branch k/n ›" when the message's parent has other (non-note) children. */
function branchNav(m) {
  const all = siblings(state.tree, m);
  if (all.length < 2) return "";
  const k = all.findIndex((s) => s.id === m.id);
  const go = (step) => () => {
    state.tip = all[(k + step + all.length) % all.length].id;
    renderMessages(branch(state.tree, state.tip));
  };
  return h(
    "span",
    { class: "branches" },
    h("button", { type: "button", class: "prev", title: "previous branch", on: { click: go(-1) } }, "‹"),
    h("span", { class: "which" }, `branch ${k + 1}/${all.length}`),
    h("button", { type: "button", class: "next", title: "next branch", on: { click: go(1) } }, "›"),
  );
}

function noteView(m) {
  return h("div", { class: "msg note", dataset: { id: m.id } }, m.content);
}

/** A transient note at the end of the thread (errors that were not stored). */
function note(text) {
  $("#messages").append(h("div", { class: "msg note transient" }, text));
}

function toolCallsView(m, last) {
  const calls = m.tool_calls || [];
  if (!calls.length) return "";
  const pending = state.approval?.message_id === m.id;
  const undecided = last && calls.some((c) => c.approval == null || c.approval === "pending");
  const list = h("ul", { class: "tools" }, calls.map((c) => toolCallItem(c, c.approval)));
  // Live approval state wins; a reloaded page still offers the buttons for undecided calls at the tip.
  return pending || undecided ? [list, approvalBox(m.id, pending ? state.approval.calls : calls)] : list;
}

function toolCallItem(call, approval) {
  const verdict = approval == null ? "" : h("span", { class: "badge" }, String(approval));
  return h(
    "li",
    { class: "tool-call", dataset: { call: call.id } },
    h("code", {}, `${call.name}(${JSON.stringify(call.arguments ?? {})})`),
    verdict,
  );
}

// -- editing, sending, streaming ------------------------------------------------------------------------

function editAndBranch(m) {
  const card = $("#messages").querySelector(`[data-id="${CSS.escape(m.id)}"]`);
  const original = card.querySelector(".text");
  const input = h("textarea", { rows: 3, value: m.content, class: "edit-box" });
  const send = () => {
    const text = input.value.trim();
    if (text) sendTurn(text, m.parent_id, !m.parent_id);
  };
  const form = h(
    "div",
    { class: "editor" },
    input,
    h("button", { type: "button", class: "send-branch", on: { click: send } }, "send as new branch"),
    h("button", { type: "button", class: "link", on: { click: () => form.replaceWith(original) } }, "cancel"),
  );
  original.replaceWith(form);
  input.focus();
}

function composerSubmit(event) {
  event.preventDefault();
  const text = $("#prompt").value.trim();
  if (!text || state.busy) return;
  const path = branch(state.tree, state.tip);
  const parent = path.at(-1);
  $("#prompt").value = "";
  sendTurn(text, parent?.id ?? null, !parent);
}

/** Show the branch up to `parentId`, then the user's text and a reply that grows as chunks arrive. */
function liveTurn(text, parentId) {
  const path = branch(state.tree, state.tip);
  const cut = parentId ? path.findIndex((m) => m.id === parentId) + 1 : 0;
  renderMessages(path.slice(0, cut));
  $("#messages").append(h("article", { class: "msg user" }, h("header", { class: "head" }, "you"), h("div", { class: "text" }, text)));
  return liveReply();
}

/** An assistant card filled by stream events; chunks are appended to one text node. */
function liveReply() {
  const text = document.createTextNode("");
  const tools = h("ul", { class: "tools" });
  const card = h(
    "article",
    { class: "msg assistant streaming" },
    h("header", { class: "head" }, h("span", { class: "role" }, "assistant"), h("span", { class: "muted" }, "…")),
    h("div", { class: "text" }, text),
    tools,
  );
  $("#messages").append(card);
  const scroll = () => ($("#messages").scrollTop = $("#messages").scrollHeight);
  return { card, text, tools, scroll };
}

function onEvent(live, last) {
  return (type, data) => {
    if (type === "user") last.id = data.message_id;
    else if (type === "chunk") live.text.data += data.text;
    else if (type === "tool_call") live.tools.append(toolCallItem(data, data.needs_approval ? "needs approval" : null));
    else if (type === "tool_result") {
      const cls = data.is_error ? "tool-result error" : "tool-result";
      live.tools.append(h("li", { class: cls }, h("code", {}, data.name), ` → ${data.content}`));
    } else if (type === "approval_required") {
      state.approval = { message_id: data.message_id, calls: data.calls };
      last.id = data.message_id;
    } else if (type === "done") last.id = data.message_id;
    else if (type === "error") {
      live.card.after(h("div", { class: "msg note transient" }, `${data.code}: ${data.message}`));
      last.failed = true;
    }
    live.scroll();
  };
}

/** Run one streamed request, then reload the thread at the newest message it stored. */
async function runStream(path, body, live, last) {
  state.busy = true;
  $("#send").disabled = true;
  try {
    await stream(path, body, onEvent(live, last));
  } catch (err) {
    // Refused before the first event (spend cap, hook, unknown message): the server stored a note if it could.
    live.card.remove();
    note(err instanceof ApiError ? `${err.code}: ${err.message}` : `error: ${err.message}`);
    last.failed = true;
  } finally {
    state.busy = false;
    $("#send").disabled = false;
  }
  const kept = last.failed ? [...$("#messages").querySelectorAll(".transient")].map((n) => n.textContent) : [];
  await openThread(state.thread.id, last.id);
  // The server stores most failures as a note (same text); show the transient one only when nothing was stored.
  const stored = new Set([...$("#messages").querySelectorAll(".note")].map((n) => n.textContent));
  for (const text of kept) if (!stored.has(text)) note(text);
  await refreshSpend();
}

async function sendTurn(text, parentId, root) {
  if (state.busy) return;
  const live = liveTurn(text, parentId);
  const last = { id: parentId, failed: false };
  await runStream(`/threads/${state.thread.id}/messages/stream`, { content: text, parent_id: parentId, root }, live, last);
}

/** Ask again for a reply: a new sibling under its parent (the old one stays, as another branch). */
async function regenerate(m) {
  if (state.busy) return;
  const path = branch(state.tree, state.tip);
  const cut = path.findIndex((shown) => shown.id === m.id);
  renderMessages(cut >= 0 ? path.slice(0, cut) : path);
  const last = { id: m.parent_id, failed: false };
  await runStream(`/threads/${state.thread.id}/messages/${m.id}/regenerate/stream`, {}, liveReply(), last);
}

/** Ask for the rest of a reply: it streams onto the end of the same message (stored there too). */
async function continueReply(m) {
  if (state.busy) return;
  const card = $("#messages").querySelector(`[data-id="${CSS.escape(m.id)}"]`);
  if (!card) return;
  card.classList.add("streaming");
  const text = document.createTextNode("");
  card.querySelector(".text").append(text);
  const tools = h("ul", { class: "tools" });
  card.append(tools);
  const scroll = () => ($("#messages").scrollTop = $("#messages").scrollHeight);
  const last = { id: m.id, failed: false };
  await runStream(`/threads/${state.thread.id}/messages/${m.id}/continue/stream`, {}, { card, text, tools, scroll }, last);
}

// -- tool approvals -------------------------------------------------------------------------------------

/** Approve/Deny per call; once every call has a decision they go to the server and its reply streams in. */
function approvalBox(messageId, calls) {
  const decisions = {};
  const rows = calls.map((call) => {
    const row = h("li", { class: "approval", dataset: { call: call.id } }, h("code", {}, call.name));
    const decide = (ok) => () => {
      decisions[call.id] = ok;
      fill(row, h("code", {}, call.name), h("span", { class: "badge" }, ok ? "approved" : "denied"));
      if (Object.keys(decisions).length === calls.length) sendDecisions(messageId, decisions);
    };
    row.append(
      h("button", { type: "button", class: "approve", on: { click: decide(true) } }, "Approve"),
      h("button", { type: "button", class: "deny", on: { click: decide(false) } }, "Deny"),
    );
    return row;
  });
  return h("div", { class: "approvals" }, h("p", {}, "The model wants to run:"), h("ul", { class: "list" }, rows));
}

async function sendDecisions(messageId, decisions) {
  state.approval = null;
  const live = liveReply();
  const last = { id: messageId, failed: false };
  const path = `/threads/${state.thread.id}/messages/${messageId}/approval/stream`;
  await runStream(path, { decisions }, live, last);
}

// -- wiring ---------------------------------------------------------------------------------------------

function wire() {
  whenUnauthenticated(showLogin);
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  $("#search").addEventListener("input", searchSoon);
  $("#new-thread-form").addEventListener("submit", createThread);
  $("#new-provider").addEventListener("change", () => {
    modelOptions($("#new-models"), $("#new-provider").value);
    $("#new-model").value = modelsOf($("#new-provider").value)[0] || "";
  });
  $("#thread-provider").addEventListener("change", onProviderPicked);
  $("#thread-model").addEventListener("change", onModelTyped);
  $("#thread-cap").addEventListener("change", onCapTyped);
  $("#thread-rename").addEventListener("click", startRename);
  $("#thread-delete").addEventListener("click", deleteThread);
  $("#composer").addEventListener("submit", composerSubmit);
  $("#prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("#composer").requestSubmit();
    }
  });
  $("#status-refresh").addEventListener("click", () => refreshStatus($("#status-body")));
  // The panel follows the appliance while the page is open; hidden tabs do not poll.
  setInterval(() => {
    if (!$("#app").hidden && !document.hidden) refreshStatus($("#status-body"));
  }, 30000);
}

wire();
// With a valid cookie the page opens straight away; a 401 shows the login screen (whenUnauthenticated).
start().catch((err) => {
  if (!(err instanceof ApiError && err.status === 401)) showLogin();
});
