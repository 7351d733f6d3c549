// The monitor: this node and the deployment, refreshed every second.
"use strict";

function rows(tbody, list) {
  tbody.replaceChildren(...list.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c)))));
}

async function refresh() {
  const error = document.getElementById("error");
  try {
    const [node, deployment] = await Promise.all([api("/api/node"), api("/api/members")]);
    error.textContent = "";
    document.getElementById("node").textContent = node.role + " " + node.member_id;
    document.getElementById("health").replaceChildren(badge(node.serving ? "serving" : "not-serving"));
    const own = [];
    for (const table of node.tables) {
      for (const p of table.partitions) {
        own.push([table.name, p.partition, p.kind, badge(p.state), p.applied_offset, lag(p.lag),
          p.input_lag === null ? "-" : lag(p.input_lag),
          p.applied_per_s, p.processed_per_s, p.recovered_per_s]);
      }
    }
    rows(document.querySelector("#partitions tbody"), own);
    const held = [];
    for (const m of deployment.members) {
      for (const t of m.tables) {
        for (const p of t.partitions) {
          held.push({ table: t.topic, member: m, p });
        }
      }
    }
    const order = { active: 0, standby: 1, replica: 2 };
    held.sort((a, b) => a.table.localeCompare(b.table) || a.p.partition - b.p.partition ||
      order[a.p.kind] - order[b.p.kind] || a.member.member_id.localeCompare(b.member.member_id));
    rows(document.querySelector("#deployment tbody"), held.map(({ table, member, p }) => [
      table, p.partition, member.member_id, member.role, member.endpoint || "-", p.kind,
      badge(p.state), p.applied_offset, lag(p.lag)]));
    document.getElementById("members").textContent = deployment.members.map(
      (m) => m.member_id + " (" + m.role + ", heard " + m.heard_s_ago + " s ago)").join("; ");
    const section = document.getElementById("processor-section");
    section.hidden = node.processor === null;
    if (node.processor !== null) {
      document.getElementById("processor").textContent = JSON.stringify(node.processor, null, 2);
    }
    document.body.dataset.refreshed = String(Date.now());
  } catch (e) {
    error.textContent = "refresh failed: " + e.message;
  }
}

refresh();
setInterval(refresh, 1000);
