// A thread is a tree of messages (parent_id). The page shows one branch: the path from a root to a tip.
// Notes (errors stored under the message they concern) are annotations, not branches: they are shown after
// their parent and never counted as a branch of it.

const ROOT = "";

export function index(messages) {
  const byId = new Map();
  const kids = new Map(); // parent id ("" for roots) -> non-note children, oldest first
  const notes = new Map(); // message id -> its notes
  for (const m of [...messages].sort((a, b) => a.seq - b.seq)) {
    byId.set(m.id, m);
    const parent = m.parent_id ?? ROOT;
    const table = m.role === "note" ? notes : kids;
    if (!table.has(parent)) table.set(parent, []);
    table.get(parent).push(m);
  }
  return { byId, kids, notes, messages };
}

export function siblings(tree, message) {
  return tree.kids.get(message.parent_id ?? ROOT) || [message];
}

export function notesOf(tree, message) {
  return tree.notes.get(message.id) || [];
}

/** The newest message that is not a note (where a thread opens by default). */
export function newest(tree) {
  const candidates = tree.messages.filter((m) => m.role !== "note");
  return candidates.reduce((a, b) => (b.seq > (a?.seq ?? -1) ? b : a), null);
}

/** The branch through `tipId`: its ancestors, itself, then the newest child at each step down. */
export function branch(tree, tipId) {
  let tip = tree.byId.get(tipId) || newest(tree);
  if (!tip) return [];
  if (tip.role === "note") tip = tree.byId.get(tip.parent_id) || newest(tree);
  const path = [];
  for (let m = tip; m; m = m.parent_id ? tree.byId.get(m.parent_id) : null) path.unshift(m);
  for (let kids = tree.kids.get(tip.id); kids?.length; kids = tree.kids.get(path.at(-1).id)) {
    path.push(kids.at(-1));
  }
  return path;
}
