// The ACL token of this browser: a field in the header, kept in
// localStorage (so it survives reloads and new tabs, as Consul's UI keeps
// its token) and sent as X-Consul-Token by every API call of app.js.
// Loaded before app.js, which calls aclToken() and onTokenChange().
"use strict";

const TOKEN_KEY = "meridian:token";
let tokenListeners = [];

// The stored secret, or "" (the agent's default token, else anonymous).
function aclToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch (e) {
    // Storage off (private mode, policies): no token rather than no UI.
    return "";
  }
}

function onTokenChange(f) {
  tokenListeners.push(f);
}

function storeToken(secret) {
  try {
    if (secret) localStorage.setItem(TOKEN_KEY, secret);
    else localStorage.removeItem(TOKEN_KEY);
  } catch (e) {
    // Without storage the token cannot be kept; say so rather than pretend.
    showTokenState("this browser does not keep tokens");
    return;
  }
  showTokenState();
  for (const f of tokenListeners) f();
}

function showTokenState(text) {
  const s = document.getElementById("token-state");
  if (s) s.textContent = text || (aclToken() ? "token set" : "no token");
}

document.getElementById("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = document.getElementById("token-input");
  const secret = input.value.trim();
  input.value = "";
  if (secret) storeToken(secret);
});
document.getElementById("token-clear").addEventListener("click", () => storeToken(""));
showTokenState();
