// The query page: a key's value through the node's TableService.Get.
"use strict";

async function tables() {
  const select = document.getElementById("table");
  const [node, deployment] = await Promise.all([api("/api/node"), api("/api/members")]);
  const names = new Set(node.tables.map((t) => t.name));
  for (const m of deployment.members) for (const t of m.tables) names.add(t.topic);
  select.replaceChildren(...[...names].sort().map((name) => el("option", { value: name }, name)));
  const wanted = new URLSearchParams(location.search).get("table");
  if (wanted && names.has(wanted)) select.value = wanted;
}

async function query(event) {
  event.preventDefault();
  const table = document.getElementById("table").value;
  const key = document.getElementById("key").value;
  const error = document.getElementById("error");
  const show = (id, text) => { document.getElementById(id).textContent = text; };
  error.textContent = "";
  for (const id of ["result-found", "result-value", "result-partition", "result-offset", "result-served-by"]) show(id, "");
  show("result-key", key);
  try {
    const r = await api("/api/get?" + new URLSearchParams({ table, key }));
    show("result-found", r.found ? "yes" : "no");
    show("result-value", r.found ? (typeof r.value === "string" ? r.value : JSON.stringify(r.value)) : "(no value)");
    show("result-partition", r.partition);
    show("result-offset", r.offset);
    show("result-served-by", r.served_by);
    document.body.dataset.answered = key;
  } catch (e) {
    error.textContent = e.message;
    document.body.dataset.answered = key;
  }
}

document.getElementById("query").addEventListener("submit", query);
tables().catch((e) => { document.getElementById("error").textContent = e.message; });
