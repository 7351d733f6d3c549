// Shared by the monitor and the query page: calls to the node's JSON API (with the bearer
// token when the node asks for one) and building elements whose content is always text.
"use strict";

const TOKEN_KEY = "goka-monitor-token";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { headers });
  if (response.status === 401) {
    const given = window.prompt("This node needs its bearer token:");
    if (given) {
      sessionStorage.setItem(TOKEN_KEY, given.trim());
      return api(path);
    }
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function badge(text) {
  return el("span", { class: "badge " + String(text).replace(/[^a-z-]/g, "") }, text);
}

function lag(value) {
  return value < 0 ? "?" : String(value);
}
